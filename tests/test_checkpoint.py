"""Checkpoint folders: atomic writes, clear errors for bad folders, ModelCheckpoint and EarlyStopping."""

import io
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

from audiotrain import Trainer
from audiotrain.train import checkpoint as ckpt
from audiotrain.train.callbacks import EarlyStopping, ModelCheckpoint
from audiotrain.train.reporting import read_history

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from bytes_read import bytes_read
from checkpoint_writer import minimal_state
from child_processes import child_env
from tasks import TinyClassifier, make_batches, weights

from tests import deadlines


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
    with pytest.raises(
        ckpt.CheckpointWriteError, match="disk full; the previous checkpoint .*last is intact"
    ):
        t.save_checkpoint(tmp_path / "checkpoints" / "last")
    assert (tmp_path / "checkpoints" / "last" / "model.safetensors").exists()
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if ".tmp-" in p.name]


def _edit_state(folder, **changes):
    """Replace fields of a checkpoint's trainer_state.json."""
    state = json.loads((folder / "trainer_state.json").read_text())
    (folder / "trainer_state.json").write_text(json.dumps({**state, **changes}))


def _drop_format_version(folder):
    state = json.loads((folder / "trainer_state.json").read_text())
    del state["format_version"]
    (folder / "trainer_state.json").write_text(json.dumps(state))


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda p: (p / "optimizer.safetensors").unlink(), "missing optimizer.safetensors"),
        (  # (it said "missing model.safetensors")
            lambda p: ((p / "model.safetensors").unlink(), (p / "model.safetensors").mkdir()),
            r"not a complete audiotrain checkpoint: model\.safetensors is a folder \(expected the files",
        ),
        (lambda p: (p / "trainer_state.json").write_text("{not json"), "not valid JSON"),
        (
            lambda p: (p / "trainer_state.json").write_text('{"format": "lightning"}'),
            "not written by audiotrain",
        ),
        (lambda p: (p / "model.safetensors").write_bytes(b"garbage" * 10), "not a readable safetensors"),
        (
            lambda p: (p / "step_state.safetensors").unlink(),
            "missing step_state.safetensors .* resume exactly",
        ),
        (  # (it said "missing step_state.safetensors"; a FIFO read as no file either)
            lambda p: ((p / "step_state.safetensors").unlink(), (p / "step_state.safetensors").mkdir()),
            r"step_state\.safetensors: is a folder, not a regular file",
        ),
        (
            lambda p: ((p / "step_state.safetensors").unlink(), os.mkfifo(p / "step_state.safetensors")),
            r"step_state\.safetensors: is a FIFO, not a regular file",
        ),
        (
            lambda p: _edit_state(p, callbacks=[1]),
            r"trainer_state.json: 'callbacks' must be an object, got list",
        ),
        (
            lambda p: _edit_state(p, loggers={"a": 1}),
            r"trainer_state.json: 'loggers' must be a list, got dict",
        ),
        (
            lambda p: _edit_state(p, format_version="2"),
            r"trainer_state.json: 'format_version' must be an int \(this audiotrain writes 2\), got '2'",
        ),
        (lambda p: _edit_state(p, format_version=None), r"'format_version' must be an int .*got None"),
        (lambda p: _edit_state(p, format_version=True), r"'format_version' must be an int .*got True"),
        (  # (no format_version: written before there was one, not today's format)
            _drop_format_version,
            r"uses checkpoint format 0, written by an older audiotrain .* cannot resume training",
        ),
        (
            lambda p: _edit_state(p, format_version=ckpt.FORMAT_VERSION + 1),
            rf"uses checkpoint format {ckpt.FORMAT_VERSION + 1}, newer than this audiotrain "
            rf"\({ckpt.FORMAT_VERSION}\); upgrade audiotrain",
        ),
        (
            lambda p: _edit_state(p, hyper_parameters=[1, 2]),
            r"trainer_state.json: 'hyper_parameters' must be an object .*got list",
        ),
        (
            lambda p: _edit_state(p, module_state=[1]),
            r"trainer_state.json: 'module_state' must be an object, got list",
        ),
        (  # (json keeps the last of a key given twice without a word)
            lambda p: (p / "trainer_state.json").write_text(
                '{"format_version": 1, ' + (p / "trainer_state.json").read_text()[1:]
            ),
            r"trainer_state.json: 'format_version' given twice in one object",
        ),
    ],
)
def test_damaged_checkpoints_are_explained(tmp_path, damage, match):
    t, _ = trained(tmp_path, max_epochs=1)
    damage(tmp_path / "checkpoints" / "last")
    with pytest.raises(ckpt.CheckpointError, match=match):
        make_trainer(tmp_path, max_epochs=2).fit(
            TinyClassifier(), make_batches(), ckpt_path=tmp_path / "checkpoints" / "last"
        )


def test_a_trainer_state_saved_with_a_bom_resumes(tmp_path):
    """An editor on Windows (Notepad, PowerShell) starts the UTF-8 it saves with a byte order mark."""
    trained(tmp_path, max_epochs=1)
    state = tmp_path / "checkpoints" / "last" / "trainer_state.json"
    state.write_bytes(b"\xef\xbb\xbf" + state.read_bytes())
    trainer = make_trainer(tmp_path, max_epochs=2)
    trainer.fit(TinyClassifier(), make_batches(), ckpt_path=state.parent)
    assert trainer.current_epoch == 2 and len(trainer.history["train_loss"]) == 2


def _edit_safetensors_header(file: Path, edit, trailing: bytes = b"") -> None:
    """Rewrite the JSON header of safetensors `file` with `edit(header text) -> text`, keeping the data (and
    appending `trailing` to it)."""
    raw = file.read_bytes()
    length = int.from_bytes(raw[:8], "little")
    header = edit(raw[8 : 8 + length].decode()).encode()
    header += b" " * (-len(header) % 8)
    file.write_bytes(len(header).to_bytes(8, "little") + header + raw[8 + length :] + trailing)


def _overlap(text: str) -> str:
    """The last tensor of the data made to point at its first bytes (another tensor's), as long as it was."""
    header = json.loads(text)
    last = max((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][0])
    begin, end = header[last]["data_offsets"]
    header[last]["data_offsets"] = [0, end - begin]
    return json.dumps(header)


def _duplicate(text: str) -> str:
    """fc2.bias listed twice, the copy pointing at another tensor's bytes (the last copy wins in MLX)."""
    header = json.loads(text)
    begin, end = header["fc2.bias"]["data_offsets"]
    return (
        text.rstrip().removesuffix("}")
        + ', "fc2.bias": '
        + json.dumps(dict(header["fc2.bias"], data_offsets=[0, end - begin]))
        + "}"
    )


def _fc2_bias(**fields: str):
    """An edit that writes `fields` (JSON text, such as "[1e999]") into fc2.bias's entry, as a tampered or
    damaged header might hold them."""

    def edit(text: str) -> str:
        header = json.loads(text)
        header["fc2.bias"].update({key: f"@{key}@" for key in fields})
        out = json.dumps(header)
        for key, value in fields.items():
            out = out.replace(f'"@{key}@"', value)
        return out

    return edit


@pytest.mark.parametrize(
    "edit, match",
    [
        (_overlap, r"model.safetensors: tensor '.*' \(bytes .*\) overlaps tensor"),
        (_duplicate, r"model.safetensors: tensor 'fc2.bias' is listed twice"),
        (
            _fc2_bias(shape="[1e999]"),
            r"model.safetensors: tensor 'fc2.bias' has no valid dtype, shape .*"
            r"\(cannot convert float infinity",
        ),
        (
            _fc2_bias(data_offsets="[0, 1e999]"),
            r"model.safetensors: tensor 'fc2.bias' has no valid dtype, shape and data_offsets",
        ),
        (_fc2_bias(shape="[-2, -1]"), r"model.safetensors: tensor 'fc2.bias' has a negative dimension"),
        (  # 0 bytes: MLX loaded it as shape (-2147483647, 0), and [2**32, 2**32, 0] as (0, 0, 0)
            _fc2_bias(shape="[2147483649, 0]", data_offsets="[0, 0]"),
            r"model.safetensors: tensor 'fc2.bias' has a dimension of 2\*\*31 or more in its shape "
            r"\(2147483649, 0\), more than an MLX array holds",
        ),
        (
            _fc2_bias(shape="[4294967296, 4294967296, 0]", data_offsets="[0, 0]"),
            r"tensor 'fc2.bias' has a dimension of 2\*\*31 or more in its shape "
            r"\(4294967296, 4294967296, 0\)",
        ),
        (  # a product of more than 4300 digits, which str() refuses to print
            _fc2_bias(shape="[" + ", ".join(["1000000"] * 900) + "]"),
            r"model.safetensors: tensor 'fc2.bias' spans \d+ bytes, but a F32 of shape \(1000000, .*"
            r"\.\.\. 900 dimensions\) takes more than the whole file",
        ),
    ],
)
def test_safetensors_with_shared_or_duplicate_tensors_are_refused(tmp_path, edit, match):
    """MLX's reader loaded both silently (one tensor reading another's weights; the last duplicate winning),
    where the safetensors library refuses them."""
    trained(tmp_path, max_epochs=1)
    _edit_safetensors_header(tmp_path / "checkpoints" / "last" / "model.safetensors", edit)
    with pytest.raises(ckpt.CheckpointError, match=match):
        make_trainer(tmp_path, max_epochs=1).validate(
            TinyClassifier(), make_batches(), ckpt_path=tmp_path / "checkpoints" / "last"
        )


def _last_moved_on(text: str) -> str:
    """The last tensor of the data moved 8 bytes on (8 bytes appended for it): 8 bytes no tensor covers
    before it."""
    header = json.loads(text)
    last = max((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][0])
    header[last]["data_offsets"] = [offset + 8 for offset in header[last]["data_offsets"]]
    return json.dumps(header)


@pytest.mark.parametrize(
    "edit, match",
    [
        (_last_moved_on, r"model.safetensors: tensor '.*' \(bytes .*\) leaves a gap before it; the file is"),
        (
            lambda text: text,  # (the 8 bytes after the last tensor)
            r"model.safetensors: its tensors take \d+ bytes, but the data section holds \d+; the file is "
            r"damaged \(bytes no tensor covers\)",
        ),
    ],
)
def test_safetensors_with_bytes_no_tensor_covers_are_refused(tmp_path, edit, match):
    """Bytes between two tensors or after the last: a file written by another tool, or damaged."""
    trained(tmp_path, max_epochs=1)
    _edit_safetensors_header(tmp_path / "checkpoints" / "last" / "model.safetensors", edit, trailing=bytes(8))
    with pytest.raises(ckpt.CheckpointError, match=match):
        make_trainer(tmp_path, max_epochs=1).validate(
            TinyClassifier(), make_batches(), ckpt_path=tmp_path / "checkpoints" / "last"
        )


def _safetensors_with_a_dtype_mlx_cannot_load(file: Path) -> dict[str, np.ndarray]:
    """Write `file`: an F8_E5M2 tensor, which MLX refuses, before two F32 ones; return the F32 ones."""
    taken = {"small": np.arange(10, dtype=np.float32), "big": np.arange(5000, dtype=np.float32) / 7}
    header, at = {"odd": {"dtype": "F8_E5M2", "shape": [8], "data_offsets": [0, 8]}}, 8
    for name, array in taken.items():
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [at, at + array.nbytes]}
        at += array.nbytes
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    data = bytes(8) + b"".join(array.tobytes() for array in taken.values())
    file.write_bytes(len(text).to_bytes(8, "little") + text + data)
    return taken


def test_tensors_beside_one_mlx_cannot_load_are_read_through_a_file_of_only_them(tmp_path):
    """MLX refuses a whole file for one tensor of a dtype it does not know: the tensors taken are then read
    through `_SubsetFile`, a file of only them whose reads come from their places in the original. MLX reads
    each tensor in one read from its start; a read from within a tensor, in small parts (as a reader may
    ask), gives the same bytes too."""
    from audiotrain import _loading

    file = tmp_path / "model.safetensors"
    taken = _safetensors_with_a_dtype_mlx_cannot_load(file)
    with pytest.raises((RuntimeError, ValueError), match="F8_E5M2"):
        mx.load(str(file))
    header = ckpt.read_header(file)
    arrays = ckpt.read_arrays(file, header={name: header[name] for name in taken})
    for name, array in taken.items():
        np.testing.assert_array_equal(np.array(arrays[name]), array)

    with open(file, "rb") as handle:
        subset = _loading._SubsetFile(handle, [header[name] for name in taken])
        whole = bytearray(subset.seek(0, io.SEEK_END))
        subset.seek(0)
        assert subset.readinto(whole) == len(whole)
        data = whole[len(whole) - sum(array.nbytes for array in taken.values()) :]
        assert bytes(data) == b"".join(array.tobytes() for array in taken.values())
        start = len(whole) - taken["big"].nbytes + 100  # inside the big tensor
        subset.seek(start)
        parts = bytearray()
        while len(parts) < 1000:
            part = bytearray(7)
            parts += part[: subset.readinto(part)]
        assert bytes(parts[:1000]) == bytes(whole[start : start + 1000])


def test_foreign_model_lists_mismatched_tensors(tmp_path):
    trained(tmp_path, max_epochs=1)
    with pytest.raises(ckpt.CheckpointError, match=r"3 mis-shaped \(e.g. fc1.bias.*fc1.weight.*fc2.weight"):
        make_trainer(tmp_path, max_epochs=1).validate(
            TinyClassifier(hidden=5), make_batches(), ckpt_path=tmp_path / "checkpoints" / "last"
        )
    with pytest.raises(
        ckpt.CheckpointError, match=f"does not exist; checkpoints in {tmp_path} .*checkpoints/last"
    ):
        make_trainer(tmp_path, max_epochs=1).fit(
            TinyClassifier(), make_batches(), ckpt_path=tmp_path / "nope"
        )
    (tmp_path / "file").write_text("x")
    with pytest.raises(ckpt.CheckpointError, match="is a file"):
        make_trainer(tmp_path, max_epochs=1).load_checkpoint(tmp_path / "file")


def test_a_missing_ckpt_path_is_a_file_not_found_error(tmp_path):
    """Lightning 2.6.6: `fit(model, ckpt_path="not existing")` raises FileNotFoundError ("Checkpoint file not
    found: not existing"), and load_from_checkpoint of a missing path too; a user's ``except
    FileNotFoundError`` catches it here too (a CheckpointError still)."""
    for run in (
        lambda t: t.fit(TinyClassifier(), make_batches(), ckpt_path=tmp_path / "not existing"),
        lambda t: t.validate(TinyClassifier(), make_batches(), ckpt_path=tmp_path / "not existing"),
    ):
        with pytest.raises(FileNotFoundError, match="not existing does not exist") as caught:
            run(make_trainer(tmp_path, max_epochs=1))
        assert isinstance(caught.value, ckpt.CheckpointError)  # (what audiotrain's own code catches)
    with pytest.raises(FileNotFoundError, match="nope does not exist"):  # (Lightning's too)
        TinyClassifier.load_from_checkpoint(tmp_path / "nope")


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


def _history_rows_walked(monkeypatch) -> list[int]:
    """The epochs of the history rows saves turn into JSON (walked for non-finite values), one per walk."""
    from audiotrain import _files

    walked: list[int] = []
    real = _files._finite_or_null

    def walk(value, *args):
        if isinstance(value, dict) and {"epoch", "step", "learning_rate"} <= set(value):
            walked.append(value["epoch"])
        return real(value, *args)

    monkeypatch.setattr(_files, "_finite_or_null", walk)
    return walked


def test_a_save_turns_only_the_new_history_rows_into_json(tmp_path, monkeypatch):
    """Every save (`last`, each epoch) turned the whole history into JSON again: saves got slower with each
    epoch, and a 10,000-epoch run would have spent about 1000 s checkpointing against 40 s training."""
    walked = _history_rows_walked(monkeypatch)
    t, _ = trained(tmp_path, max_epochs=12)
    assert sorted(set(walked)) == list(range(12))
    assert len(walked) <= 2 * 12  # each row once or twice (its epoch's save, the next), not 78 times
    saved = ckpt.read_state(tmp_path / "checkpoints" / "last")["history"]["rows"]
    assert saved == t._run.history.rows  # the file holds the whole history, as before
    resumed = make_trainer(tmp_path, max_epochs=13)
    resumed.fit(TinyClassifier(), make_batches(), ckpt_path=tmp_path / "checkpoints" / "last")
    assert resumed.history["epoch"] == list(range(13)) and resumed.history["time"][:12] == t.history["time"]


def test_a_history_row_changed_after_a_save_is_saved_as_it_is_now(tmp_path):
    """A run's last row changes after its epoch's save (a resumed epoch, late hook values): the next save
    writes it anew, with its NaN values restored on load, and an int that became a float stays a float."""
    texts = ckpt.RowTexts()
    rows = [{"epoch": 0, "loss": float("nan")}, {"epoch": 1, "loss": 1}]

    def saved_rows(step: int) -> list:
        state = {**minimal_state(step), "history": {"rows": [dict(row) for row in rows]}}
        folder = ckpt.write_checkpoint(tmp_path / "last", {"w": mx.zeros(2)}, {}, {}, state, row_texts=texts)
        return ckpt.read_state(folder)["history"]["rows"]

    first = saved_rows(1)
    assert first[0]["loss"] != first[0]["loss"] and first[1] == {"epoch": 1, "loss": 1}
    rows[1] = {"epoch": 1, "loss": 1.0}  # equal to 1, and written 1.0: only the type changed
    retyped = saved_rows(2)
    assert retyped[1] == rows[1] and type(retyped[1]["loss"]) is float
    rows[1]["val_acc"] = float("inf")
    rows.append({"epoch": 2, "loss": 0.5})
    again = saved_rows(3)
    assert again[0]["loss"] != again[0]["loss"] and again[1:] == [rows[1], rows[2]]
    assert type(again[1]["loss"]) is float and texts.serialized == 5  # row 0 written from its text
    del rows[1:]  # (a checkpoint of an earlier run loaded: fewer rows)
    assert len(saved_rows(4)) == 1


def test_an_earlier_history_row_a_callback_edits_at_a_save_is_written_so_and_the_run_keeps_its_own(tmp_path):
    """A save writes the rows before the last from the text its previous save made: a callback's
    on_save_checkpoint that edits an earlier row of the checkpoint still gets its edit written (the rows
    it sees are copies, compared with those written), and the run's own history is left as it was."""
    from audiotrain.train.callbacks import Callback

    class Relabel(Callback):
        def on_save_checkpoint(self, trainer, module, checkpoint):
            rows = checkpoint["history"]["rows"]
            if len(rows) == 3:
                rows[0]["note"] = "edited at the third save"

    t, _ = trained(tmp_path, max_epochs=3, callbacks=[Relabel()])
    saved = ckpt.read_state(tmp_path / "checkpoints" / "last")["history"]["rows"]
    assert saved[0]["note"] == "edited at the third save" and saved[1:] == t._run.history.rows[1:]
    assert "note" not in t._run.history.rows[0] and "note" not in t.history


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
    # Lightning's auto_insert_metric_name: each field with its name
    assert sorted(f"model-epoch={e:02d}-val_loss={losses[e]:.3f}" for e in best_two) == sorted(
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


@pytest.mark.parametrize("monitor", [None, "", 3])
def test_early_stopping_without_a_metric_name_is_refused_at_once(monitor):
    """EarlyStopping(monitor=None) was taken, and failed after the first epoch inside difflib."""
    with pytest.raises(
        TypeError, match=r"EarlyStopping: monitor must be the name of a logged metric, e\.g\."
    ):
        EarlyStopping(monitor=monitor)


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


# ---------------------------------------------------------------- crashed writers: the folder heals itself
class Killed(BaseException):
    """Stands for kill -9 at one point of a save: nothing after it runs, not even `except` clean-up."""


def _state(step: int) -> dict:
    return minimal_state(step)


def _write(folder, step: int, name: str = "last"):
    arrays = {"w": mx.full((4,), float(step))}
    return ckpt.write_checkpoint(folder / name, arrays, {"m": mx.array([step])}, {}, _state(step))


def _step_of(path) -> int:
    return ckpt.read_state(ckpt.resolve_checkpoint(path))["progress"]["global_step"]


def _hidden(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.name.endswith(".prev"))


def _in_swap() -> bool:
    """Whether the caller runs inside a save's swap (and not in a heal a save starts with)."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name == "_swap_in":
            return True
        frame = frame.f_back
    return False


def _kill_at(monkeypatch, point: str) -> None:
    """Make the next save die at `point`, leaving what a killed process leaves (no clean-up runs)."""
    monkeypatch.setattr(ckpt, "_discard", lambda tmp: None)
    if point == "mid_write":  # the model file written, the rest not
        real = ckpt._save_arrays
        monkeypatch.setattr(ckpt, "_save_arrays", lambda p, a: (real(p, a), (_ for _ in ()).throw(Killed())))
    elif point == "before_swap":  # the temporary folder complete, not swapped in
        monkeypatch.setattr(ckpt, "_swap_in", lambda tmp, final: (_ for _ in ()).throw(Killed()))
    elif point == "between_renames":  # old moved to NAME.prev, the new one not yet at NAME
        real = os.replace

        def replace(src, dst):
            if _in_swap() and Path(src).name.startswith(".") and ".tmp-" in Path(src).name:
                raise Killed()  # the new folder's rename: the old one is aside by now
            return real(src, dst)

        monkeypatch.setattr(os, "replace", replace)
    elif point == "before_prev_removed":
        real_remove = ckpt._remove_checkpoint

        def remove(path, home):
            if _in_swap():
                raise Killed()
            return real_remove(path, home)

        monkeypatch.setattr(ckpt, "_remove_checkpoint", remove)
    elif point == "mid_delete":  # NAME.prev renamed to trash, its removal cut short
        real_rmtree = ckpt.shutil.rmtree

        def rmtree(path, *args, **kwargs):
            if _in_swap():
                raise Killed()
            return real_rmtree(path, *args, **kwargs)

        monkeypatch.setattr(ckpt.shutil, "rmtree", rmtree)
    else:
        raise AssertionError(point)


# (crash point, the step `last` must hold afterwards: the new one once the new state is complete and the old
# one has been moved aside; the old one while the new one was never swapped in)
CRASH_POINTS = [
    ("mid_write", 1),
    ("before_swap", 1),
    ("between_renames", 2),
    ("before_prev_removed", 2),
    ("mid_delete", 2),
]


@pytest.mark.parametrize("point, expected", CRASH_POINTS)
def test_a_crash_at_any_point_of_a_save_heals_at_the_next_start(tmp_path, monkeypatch, point, expected):
    _write(tmp_path, 1)
    with monkeypatch.context() as m:
        _kill_at(m, point)
        with pytest.raises(Killed):
            _write(tmp_path, 2)
    assert _hidden(tmp_path)  # the leftovers the issue found: 863 MB after 20 kills
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "loading ... left by an interrupted save" when `last` is missing
        assert _step_of(tmp_path / "last") == expected  # readable before any heal
    done = ckpt.heal_folder(tmp_path)
    assert done and _hidden(tmp_path) == [] and sorted(os.listdir(tmp_path)) == ["last"]
    assert _step_of(tmp_path / "last") == expected
    _write(tmp_path, 3)  # and the next save works as usual
    assert _step_of(tmp_path / "last") == 3 and _hidden(tmp_path) == []


@pytest.mark.parametrize("first", [p for p, _ in CRASH_POINTS])
@pytest.mark.parametrize("second", [p for p, _ in CRASH_POINTS])
def test_two_crashes_in_a_row_keep_the_newest_complete_state(tmp_path, monkeypatch, first, second):
    """The restart's own first save crashes too (the issue: no `last` left, the state only in a hidden folder)."""
    _write(tmp_path, 1)
    for point, step in ((first, 2), (second, 3)):
        with monkeypatch.context() as m:
            _kill_at(m, point)
            with pytest.raises(Killed):
                _write(tmp_path, step)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        newest = _step_of(tmp_path / "last")
    ckpt.heal_folder(tmp_path)
    assert _hidden(tmp_path) == [] and _step_of(tmp_path / "last") == newest
    # the second save's state whenever it got past moving the old one aside, else the first's outcome
    first_outcome = dict(CRASH_POINTS)[first]
    assert newest == (3 if dict(CRASH_POINTS)[second] == 2 else first_outcome)


def test_a_crash_inside_the_heal_is_healed_by_the_next_one(tmp_path, monkeypatch):
    _write(tmp_path, 1)
    with monkeypatch.context() as m:
        _kill_at(m, "between_renames")
        with pytest.raises(Killed):
            _write(tmp_path, 2)
    with monkeypatch.context() as m:  # the restart dies right after restoring `last`, before its clean-up
        m.setattr(ckpt.shutil, "rmtree", lambda *a, **k: (_ for _ in ()).throw(Killed()))
        with pytest.raises(Killed):
            ckpt.heal_folder(tmp_path)
    assert _step_of(tmp_path / "last") == 2
    ckpt.heal_folder(tmp_path)
    assert _hidden(tmp_path) == [] and _step_of(tmp_path / "last") == 2


def test_a_live_writers_temporary_folder_is_left_alone(tmp_path):
    """Two processes saving into one folder: a heal removes only folders whose writer died (lock free)."""
    _write(tmp_path, 1)
    tmp, lock = ckpt._locked_temp_folder(tmp_path / "last")  # as another process in the middle of a save
    try:
        (tmp / "model.safetensors").write_bytes(b"half")
        ckpt.heal_folder(tmp_path)
        _write(tmp_path, 2)  # a save of the same name by this process heals first too
        assert tmp.is_dir() and _step_of(tmp_path / "last") == 2
    finally:
        os.close(lock)  # the writer dies: its lock goes with it
    ckpt.heal_folder(tmp_path)
    assert not tmp.exists() and _hidden(tmp_path) == []


def _kill_writing(monkeypatch, name: str) -> None:
    """Make the next save die halfway through writing its file `name` (kill -9: no clean-up runs)."""
    monkeypatch.setattr(ckpt, "_discard", lambda tmp: None)
    real_save, real_open = ckpt._save_arrays, open

    def save(path, arrays):
        real_save(path, arrays)
        if path.name == name:
            os.truncate(path, path.stat().st_size // 2)
            raise Killed()

    def open_(path, mode="r", *args, **kwargs):
        f = real_open(path, mode, *args, **kwargs)
        if Path(path).name != name or "w" not in mode:
            return f
        with f:
            f.write(b'{"format": "audiotrain-checkpoint", "form')  # the state's first bytes
        raise Killed()

    monkeypatch.setattr(ckpt, "_save_arrays", save)
    monkeypatch.setattr(ckpt, "open", open_, raising=False)  # (the module's own name for the builtin)


@pytest.mark.parametrize("name", ckpt.CHECKPOINT_FILES)
def test_a_first_save_killed_while_writing_any_of_its_files_is_never_taken_for_a_checkpoint(
    tmp_path, monkeypatch, name
):
    """A folder counts as a complete checkpoint once trainer_state.json reads whole: so it is written last,
    after every array file, and a half-written one is no state. Killed in the middle of writing any file, a
    run's first save leaves only a temporary folder, which a load refuses and the next heal removes (with
    the state written first, a kill while writing the optimizer's file was restored as `last`; with a
    half-written state counted, the heal at the next fit's start raised 'not valid JSON')."""
    with monkeypatch.context() as m:
        _kill_writing(m, name)
        with pytest.raises(Killed):
            ckpt.write_checkpoint(
                tmp_path / "last",
                {"w": mx.ones(4)},
                {"m": mx.ones(4)},
                {"s": mx.zeros(1)},
                _state(1),
                callback_arrays={"swa/w": mx.ones(4)},
                arrays_in_state={"0": mx.ones(4)},  # (a callback's state_dict() array)
            )
    assert _hidden(tmp_path) and not (tmp_path / "last").exists()
    with pytest.raises(ckpt.CheckpointError, match="last does not exist"):
        ckpt.resolve_checkpoint(tmp_path / "last")
    done = ckpt.heal_folder(tmp_path)
    assert len(done) == 1 and done[0].startswith("removed .last.tmp-")
    assert os.listdir(tmp_path) == []


def test_a_heal_leaves_a_name_alone_while_a_live_writer_is_between_its_two_renames(tmp_path):
    """Another process saving `last` has moved the old one aside (``.last.prev-*``) and is about to rename
    its new folder in; a second fit starting in the folder heals it then. Restoring the prev as `last` there
    made the writer's rename fail ('Directory not empty') and lost the new checkpoint."""
    _write(tmp_path, 1)
    _write(tmp_path / "elsewhere", 2)
    tmp, lock = ckpt._locked_temp_folder(tmp_path / "last")  # as the other process, in its save
    try:
        for file in (tmp_path / "elsewhere" / "last").iterdir():
            shutil.copy(file, tmp / file.name)
        shutil.rmtree(tmp_path / "elsewhere")
        os.replace(tmp_path / "last", tmp_path / ".last.prev-0123abcd")  # its first rename
        assert ckpt.heal_folder(tmp_path) == []
        os.replace(tmp, tmp_path / "last")  # its second one
    finally:
        os.close(lock)
    assert _step_of(tmp_path / "last") == 2
    ckpt.heal_folder(tmp_path)
    assert _hidden(tmp_path) == [] and _step_of(tmp_path / "last") == 2


def test_a_heal_keeps_the_prev_beside_a_damaged_checkpoint_of_its_name(tmp_path):
    """A prev is removed only beside a complete checkpoint of its name: beside a damaged one it may be the
    only state left to load."""
    _write(tmp_path, 1)
    shutil.copytree(tmp_path / "last", tmp_path / ".last.prev-0123abcd")
    _write(tmp_path, 2)
    (tmp_path / "last" / ckpt.STATE_FILE).write_text('{"format": "audiotrain-checkpoint", "form')
    assert ckpt.heal_folder(tmp_path) == []
    assert _step_of(tmp_path / ".last.prev-0123abcd") == 1


def test_a_processs_first_save_into_a_folder_removes_what_a_killed_process_left_there(tmp_path):
    """What a writer killed in another process left (here under another name than the save's) is found by
    the first save this process makes into the folder, without a heal called first."""
    left = tmp_path / ".epoch=0-step=1.tmp-0123abcd"
    left.mkdir()
    (left / "model.safetensors").write_bytes(b"x" * 1000)
    _write(tmp_path, 1)
    assert _hidden(tmp_path) == [] and os.listdir(tmp_path) == ["last"]


def test_a_delete_killed_midway_keeps_the_users_file_of_the_checkpoint_at_the_next_heal(tmp_path):
    """A top-k delete renames the checkpoint to its trash name first; killed then, the next fit's heal
    removed the trash whole, with the transcription a user had put in the checkpoint folder. The heal ends
    the delete as it goes uncut: the save's files go, the user's file is back under the checkpoint's name."""
    _write(tmp_path, 1, "epoch=0-step=1")
    (tmp_path / "epoch=0-step=1" / "song.lab").write_text("mine")
    os.replace(tmp_path / "epoch=0-step=1", tmp_path / ".epoch=0-step=1.trash-0123abcd")  # (then killed)
    with pytest.warns(UserWarning, match=r"epoch=0-step=1: kept song\.lab"):
        ckpt.heal_folder(tmp_path)
    assert _hidden(tmp_path) == [] and os.listdir(tmp_path / "epoch=0-step=1") == ["song.lab"]
    assert (tmp_path / "epoch=0-step=1" / "song.lab").read_text() == "mine"


def test_deleting_a_checkpoint_whose_name_a_users_folder_took_leaves_the_folder(tmp_path):
    """Top-k rotation deletes a checkpoint it saved; a folder of the user's put under that name since is
    left as it is, with a warning."""
    _write(tmp_path, 1, "epoch=0-step=1")
    shutil.rmtree(tmp_path / "epoch=0-step=1")
    (tmp_path / "epoch=0-step=1").mkdir()
    (tmp_path / "epoch=0-step=1" / "notes.txt").write_text("mine")
    with pytest.warns(UserWarning, match=r"epoch=0-step=1 is a folder that is not a checkpoint .*left as it"):
        ckpt.remove_checkpoint(tmp_path / "epoch=0-step=1")
    assert (tmp_path / "epoch=0-step=1" / "notes.txt").read_text() == "mine"


def test_rotation_renames_before_deleting(tmp_path, monkeypatch):
    """A kill during top-k rotation leaves no half-deleted checkpoint under a loadable name."""
    cb = ModelCheckpoint(dirpath=tmp_path / "ck", monitor=None, save_top_k=1, every_n_train_steps=2)
    with monkeypatch.context() as m:
        real = ckpt.shutil.rmtree

        def die_in_rotation(path, *a, **k):
            if ".trash-" in str(path):
                raise Killed()
            return real(path, *a, **k)

        m.setattr(ckpt.shutil, "rmtree", die_in_rotation)
        with pytest.raises(Killed):
            trained(tmp_path, max_epochs=1, callbacks=[cb])
    names = sorted(os.listdir(tmp_path / "ck"))
    assert names[0].startswith(".epoch=0-step=2.trash-") and names[1:] == ["epoch=0-step=4"]
    ckpt.heal_folder(tmp_path / "ck")
    assert sorted(os.listdir(tmp_path / "ck")) == ["epoch=0-step=4"]


def _listings_of(folder: Path, monkeypatch) -> list[str]:
    """Records each listing of `folder` (os.scandir, os.listdir: Path.iterdir and glob call one of them)."""
    listed: list[str] = []
    real_scandir, real_listdir = os.scandir, os.listdir

    def note(path, how):
        if isinstance(path, (str, os.PathLike)) and os.path.abspath(path) == str(folder):  # (not an fd)
            listed.append(how)

    monkeypatch.setattr(os, "scandir", lambda path=".": (note(path, "scandir"), real_scandir(path))[1])
    monkeypatch.setattr(os, "listdir", lambda path=".": (note(path, "listdir"), real_listdir(path))[1])
    return listed


def test_saves_do_not_list_the_checkpoint_folder(tmp_path, monkeypatch):
    """With save_top_k=-1 every save listed the whole folder (twice, for its top-k name and `last`) to heal
    it: each save got slower than the one before, 2x over 5000 saves. The folder is healed whole when the fit
    starts; a save heals only the leftovers of its own name."""
    folder = tmp_path / "ck"
    listed = _listings_of(folder, monkeypatch)
    cb = ModelCheckpoint(dirpath=folder, monitor=None, save_top_k=-1, every_n_train_steps=1, save_last=True)
    trained(tmp_path, max_epochs=2, callbacks=[cb])
    assert len([p for p in folder.iterdir() if p.name.startswith("epoch=")]) == 12
    assert len(listed) <= 3  # when the fit starts (was 2 more per save: 27)
    assert not [p for p in folder.iterdir() if p.name.startswith(".")][1:]  # (the fit's lock file alone)


def test_a_save_that_died_midway_is_healed_by_the_next_save_of_its_name(tmp_path, monkeypatch):
    """Without listing the folder: this process remembers the folders its saves made on their way."""
    _write(tmp_path, 1)
    for point in ("mid_write", "between_renames"):
        with monkeypatch.context() as m:
            _kill_at(m, point)
            with pytest.raises(Killed):
                _write(tmp_path, 2)
        assert _hidden(tmp_path)
        with monkeypatch.context() as m:
            listed = _listings_of(tmp_path, m)
            _write(tmp_path, 3)
        assert listed == [] and _hidden(tmp_path) == [] and _step_of(tmp_path / "last") == 3


@pytest.mark.slow
def test_kill_9_loop_never_loses_the_newest_state_nor_leaks_folders(tmp_path):
    """Real writers killed with SIGKILL at random moments, 20 times: after each, `last` loads with a step no
    lower than before, and a restart removes what the killed writer left (the issue: 863 MB after 20 kills)."""
    import random
    import signal
    import subprocess
    import time

    worker = Path(__file__).parent / "checkpoint_writer.py"
    rng, step, kills_mid_save = random.Random(0), 0, 0
    env = child_env(tests=True)
    for _ in range(20):
        proc = subprocess.Popen(
            [sys.executable, str(worker), str(tmp_path), str(step)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert deadlines.read_line(proc, "'ready' from the child", 120).strip() == "ready"
        # The restart healed what the last kill left. (Looked at before the writer's first save: once it
        # runs, the trash of its own first delete may be there, as a loaded machine showed.)
        assert not [n for n in _hidden(tmp_path) if ".trash-" in n or n.endswith(".prev")]
        proc.stdin.write("go\n")
        proc.stdin.flush()
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        proc.stdin.close()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if step or (tmp_path / "last").exists():
                now = _step_of(tmp_path / "last")
                assert now >= step
                step = now
            elif _hidden(tmp_path):
                # Killed inside the first save (a loaded machine: none finished in 0.6 s): a finished
                # temporary folder is that save's state; an unfinished one, nothing to resume, said so.
                try:
                    step = _step_of(tmp_path / "last")
                except ckpt.CheckpointError as err:
                    assert "there is nothing to resume" in str(err)
        assert len(_hidden(tmp_path)) <= 4  # at most what one killed writer can leave
        kills_mid_save += bool(_hidden(tmp_path))
    ckpt.heal_folder(tmp_path)
    assert _hidden(tmp_path) == [] and step > 0
    assert kills_mid_save >= 3  # the kills did land inside saves (else this tested nothing)
    assert _step_of(tmp_path / "last") == step


def test_a_second_fit_in_the_same_root_keeps_the_first_fits_checkpoints(tmp_path):
    """Lightning versions what a new run writes; a fit resumed from a checkpoint goes on in its folder."""
    trained(tmp_path, max_epochs=1)
    first = {p: p.read_bytes() for p in (tmp_path / "checkpoints").rglob("*") if p.is_file()}
    t2, _ = trained(tmp_path, max_epochs=2)
    assert {p: p.read_bytes() for p in first} == first
    assert ckpt.read_state(tmp_path / "checkpoints" / "version_1" / "last")["progress"]["epoch"] == 2
    t3, _ = trained(tmp_path, max_epochs=1)
    assert (tmp_path / "checkpoints" / "version_2" / "last").is_dir()
    resumed = make_trainer(tmp_path, max_epochs=3)
    resumed.fit(TinyClassifier(), make_batches(), ckpt_path=tmp_path / "checkpoints" / "version_1" / "last")
    assert ckpt.read_state(tmp_path / "checkpoints" / "version_1" / "last")["progress"]["epoch"] == 3
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("version_*")) == ["version_1", "version_2"]
    assert {p: p.read_bytes() for p in first} == first


def test_a_second_fit_started_during_the_first_ones_first_epoch_gets_its_own_folder(tmp_path):
    """The default folder is claimed when a fit starts, not when it first saves (an epoch later): a fit
    started meanwhile (here from inside the first one's first batch) gets version_1 and neither replaces the
    other's `last`."""
    from audiotrain.train.callbacks import Callback

    class SecondFitDuringFirstEpoch(Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if trainer.global_step == 1 and batch_idx == 0:
                second = make_trainer(tmp_path, max_epochs=1)
                second.fit(TinyClassifier(hidden=5), make_batches())

    first = make_trainer(tmp_path, max_epochs=1, callbacks=[SecondFitDuringFirstEpoch()])
    first.fit(TinyClassifier(hidden=7), make_batches())
    checkpoints = tmp_path / "checkpoints"
    assert first.callbacks.checkpoint_folder(tmp_path) == checkpoints

    def hidden(folder):
        return mx.load(str(folder / "last" / "model.safetensors"))["fc1.weight"].shape[0]

    assert hidden(checkpoints) == 7 and hidden(checkpoints / "version_1") == 5


def test_a_fit_that_saved_nothing_leaves_no_empty_checkpoint_folder(tmp_path):
    make_trainer(tmp_path, fast_dev_run=True).fit(TinyClassifier(), make_batches())
    assert not (tmp_path / "checkpoints").exists()
    trained(tmp_path, max_epochs=1)
    assert (tmp_path / "checkpoints" / "last").is_dir() and not (
        tmp_path / "checkpoints" / "version_1"
    ).exists()


def _link_out(folder, name):
    """Replace `folder/name` by a link to a copy of it outside the folder; returns the copy."""
    outside = folder.parent.parent / f"outside-{name}"
    (folder / name).rename(outside)
    (folder / name).symlink_to(outside)
    return outside


@pytest.mark.parametrize(  # (step_state: a load of the weights alone, which never reads it, refuses it too)
    "name", ["model.safetensors", "optimizer.safetensors", "trainer_state.json", "step_state.safetensors"]
)
def test_a_file_linked_from_outside_the_checkpoint_folder_is_refused_by_every_loader(tmp_path, name):
    """Loading reads nothing outside the folder it was given (as the CLAP loader): the error names the file
    and where it leads, and says how to copy it in."""
    trained(tmp_path, max_epochs=1)
    last = tmp_path / "checkpoints" / "last"
    outside = _link_out(last, name)
    match = rf"{last / name} leads outside {last} \(a link to {outside}\).*cp -L"
    with pytest.raises(ckpt.CheckpointError, match=match):
        TinyClassifier.load_from_checkpoint(last)
    for stage in ("validate", "predict"):
        with pytest.raises(ckpt.CheckpointError, match=match):
            run = getattr(make_trainer(tmp_path, max_epochs=1), stage)
            run(TinyClassifier(), make_batches(), ckpt_path=last)
    with pytest.raises(ckpt.CheckpointError, match=match):
        make_trainer(tmp_path, max_epochs=2).fit(TinyClassifier(), make_batches(), ckpt_path=last)
    (last / name).unlink()
    os.link(outside, last / name)  # a copy (here a hard link) is read
    assert TinyClassifier.load_from_checkpoint(last) is not None


def test_a_link_inside_the_folder_and_a_linked_folder_still_load(tmp_path):
    trained(tmp_path, max_epochs=1)
    last = tmp_path / "checkpoints" / "last"
    (last / "model.safetensors").rename(last / "weights.safetensors")
    (last / "model.safetensors").symlink_to("weights.safetensors")
    (tmp_path / "linked").symlink_to(last)
    assert TinyClassifier.load_from_checkpoint(tmp_path / "linked") is not None


def _set_nan(file, name=None):
    arrays = dict(mx.load(str(file)))
    name = name or sorted(arrays)[0]
    arrays[name] = mx.full(arrays[name].shape, float("nan"))
    mx.save_safetensors(str(file), arrays)
    return name


def test_nan_weights_in_a_checkpoint_are_refused_naming_the_file_and_tensor(tmp_path):
    """For inference and resume alike: they would predict NaN (or train on to NaN) naming nothing."""
    trained(tmp_path, max_epochs=1)
    last = tmp_path / "checkpoints" / "last"
    tensor = _set_nan(last / "model.safetensors", "fc2.bias")
    match = rf"{last / 'model.safetensors'}: tensor {tensor} holds NaN or infinite values"
    with pytest.raises(ckpt.CheckpointError, match=match):
        TinyClassifier.load_from_checkpoint(last)
    with pytest.raises(ckpt.CheckpointError, match=match):
        make_trainer(tmp_path, max_epochs=1).predict(TinyClassifier(), make_batches(), ckpt_path=last)
    with pytest.raises(ckpt.CheckpointError, match=match):
        make_trainer(tmp_path, max_epochs=2).fit(TinyClassifier(), make_batches(), ckpt_path=last)
    trained(tmp_path / "again", max_epochs=1)
    last = tmp_path / "again" / "checkpoints" / "last"
    tensor = _set_nan(last / "optimizer.safetensors")
    with pytest.raises(ckpt.CheckpointError, match=rf"optimizer.safetensors: tensor {tensor} holds NaN"):
        make_trainer(tmp_path, max_epochs=2).fit(TinyClassifier(), make_batches(), ckpt_path=last)


def test_a_checkpoint_of_another_model_is_refused_from_its_header_before_its_data_is_read(tmp_path):
    """An extra tensor however large, or one of another shape, is refused having read the file's header
    only: every tensor was read (and checked for NaN) first, costing the whole file in memory before the
    error, and NaN in a tensor the model does not take called the file damaged rather than another model's."""
    trained(tmp_path, max_epochs=1)
    last = tmp_path / "checkpoints" / "last"
    model_file = last / "model.safetensors"
    arrays = dict(mx.load(str(model_file)))
    arrays["extra"] = mx.full((16, 2**20), float("nan"))  # 64 MiB
    mx.save_safetensors(str(model_file), arrays)
    before = bytes_read()
    with pytest.raises(
        ckpt.CheckpointError, match=r"model.safetensors does not match .*1 unexpected \(e.g. extra\)"
    ):
        TinyClassifier.load_from_checkpoint(last)
    with pytest.raises(ckpt.CheckpointError, match=r"1 unexpected \(e.g. extra\)"):
        make_trainer(tmp_path, max_epochs=2).fit(TinyClassifier(), make_batches(), ckpt_path=last)
    if before is not None:
        assert bytes_read() - before < 16 * 2**20  # (the checkpoint's other files and code: well under 1 MiB)
    with pytest.warns(
        UserWarning, match=r"strict=False.*in the checkpoint but not in the model, ignored: extra"
    ):
        loaded = TinyClassifier.load_from_checkpoint(last, strict=False)  # (the NaN it ignores is not read)
    assert np.array_equal(np.array(loaded.fc2.bias), np.array(arrays["fc2.bias"]))

    del arrays["extra"]
    arrays["fc1.weight"] = mx.full((3, 7), float("nan"))
    mx.save_safetensors(str(model_file), arrays)
    with pytest.raises(ckpt.CheckpointError, match=r"1 mis-shaped \(e.g. fc1.weight: checkpoint \(3, 7\)"):
        make_trainer(tmp_path, max_epochs=1).validate(TinyClassifier(), make_batches(), ckpt_path=last)


def test_checkpoint_folders_follow_the_umask(tmp_path):
    """A teammate or a serving process running as another user can read them, as any other file the run
    writes (tempfile's folders were 0o700 whatever the umask)."""
    before = os.umask(0o002)
    try:
        trained(tmp_path, max_epochs=1)
    finally:
        os.umask(before)
    last = tmp_path / "checkpoints" / "last"
    assert last.stat().st_mode & 0o777 == 0o775
    assert (last / "trainer_state.json").stat().st_mode & 0o777 == 0o664


# ---------------------------------------------------------------- freeze / unfreeze schedules and resume
class FineTunes(TinyClassifier):
    """Lightning's BackboneFinetuning pattern: fc1 frozen when built, unfrozen once at `unfreeze_at`
    (a one-off hook, as Lightning's callback writes it), frozen again at `refreeze_at`."""

    def __init__(self, unfreeze_at=1, refreeze_at=None):
        super().__init__()
        self.unfreeze_at, self.refreeze_at = unfreeze_at, refreeze_at
        self.fc1.freeze()

    def on_train_epoch_start(self, epoch):
        if epoch == self.unfreeze_at:
            self.fc1.unfreeze()
        if epoch == self.refreeze_at:
            self.fc1.freeze()


def _fine_tune(tmp_path, name, max_epochs, ckpt_path=None, **kw):
    mx.random.seed(0)
    module = FineTunes(**kw)
    # The first run saves every 2 steps; the resumed ones save only their own `last`.
    every = ModelCheckpoint(
        dirpath=tmp_path / name, filename="{epoch}-{step}", save_top_k=-1, every_n_train_steps=2
    )
    t = make_trainer(
        tmp_path / name,
        max_epochs=max_epochs,
        accumulate_grad_batches=2,
        compile=True,
        callbacks=[every] if ckpt_path is None else None,
    )
    t.fit(module, make_batches(80, 16), ckpt_path=ckpt_path)  # 5 batches: 3 optimizer steps an epoch
    return t, module


@pytest.mark.parametrize("refreeze_at", [None, 2])
def test_a_fine_tuning_schedule_resumes_exactly_from_any_checkpoint(tmp_path, refreeze_at):
    """A checkpoint after the unfreeze was refused (the resumed module is built frozen, so the optimizer
    had no state for the unfrozen layer) and, loaded, would have kept the layer frozen."""
    _, straight = _fine_tune(tmp_path, "straight", 4, refreeze_at=refreeze_at)
    saved = sorted((tmp_path / "straight").glob("epoch=*"))
    assert len(saved) >= 5  # before, after and (with refreeze_at) after the second change, some mid-epoch
    for folder in saved:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _, resumed = _fine_tune(
                tmp_path, f"from-{folder.name}", 4, ckpt_path=folder, refreeze_at=refreeze_at
            )
        # Built frozen, as the saved run started: its later unfreeze is the run's, nothing to warn of.
        assert not [w for w in caught if "trains other parameters" in str(w.message)], folder.name
        a, b = weights(straight), weights(resumed)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"resumed from {folder.name}: {k}")


def test_a_module_built_to_train_other_parameters_is_told_what_the_resumed_fit_trains(tmp_path):
    _fine_tune(tmp_path, "head-only", 1, unfreeze_at=None)  # fc1 frozen throughout
    last = sorted((tmp_path / "head-only").glob("epoch=*"))[-1]

    class BuiltUnfrozen(FineTunes):
        def __init__(self):
            super().__init__(unfreeze_at=None)
            self.fc1.unfreeze()

    mx.random.seed(0)
    module = BuiltUnfrozen()
    t2 = make_trainer(tmp_path / "more", max_epochs=2, accumulate_grad_batches=2, compile=True)
    with pytest.warns(UserWarning, match=r"as built trains other parameters \(fc1.bias, fc1.weight\)"):
        t2.fit(module, make_batches(80, 16), ckpt_path=last)
    assert t2.global_step == 6
    np.testing.assert_array_equal(np.array(module.fc1.weight), before_fc1(last))  # frozen, as in the run


def before_fc1(folder):
    return np.array(mx.load(str(folder / "model.safetensors"))["fc1.weight"])


def test_a_parameter_unfrozen_after_resuming_starts_with_fresh_optimizer_state(tmp_path):
    _fine_tune(tmp_path, "head-only", 1, unfreeze_at=None)
    last = sorted((tmp_path / "head-only").glob("epoch=*"))[-1]

    class UnfreezesOnResume(FineTunes):
        def on_fit_start(self):  # after the checkpoint is loaded: the resumed run trains fc1 too
            self.fc1.unfreeze()

    module = UnfreezesOnResume(unfreeze_at=None)
    t = make_trainer(tmp_path / "more", max_epochs=2, accumulate_grad_batches=2, compile=True)
    t.fit(module, make_batches(80, 16), ckpt_path=last)
    assert not np.array_equal(np.array(module.fc1.weight), before_fc1(last))
    state = json.loads((tmp_path / "more" / "checkpoints" / "last" / "trainer_state.json").read_text())
    assert state["trainable"]["now"] == ["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"]
    assert state["trainable"]["at_start"] == ["fc2.bias", "fc2.weight"]


def test_only_a_fresh_parameters_own_optimizer_slots_may_be_missing_from_the_checkpoint(tmp_path):
    """A parameter the resumed fit trains and the checkpoint's did not (unfrozen since) has no optimizer state
    in the file; that excuses its own slots, not those of another parameter whose name holds its name."""
    expected = {"state.fc.weight.m": mx.zeros(2), "state.proj_fc.weight.m": mx.zeros(2)}
    file = tmp_path / "optimizer.safetensors"
    fresh = frozenset({"fc.weight"})
    ckpt.check_matches({"state.proj_fc.weight.m": mx.zeros(2)}, expected, "AdamW state", file, fresh)
    with pytest.raises(ckpt.CheckpointError, match=r"1 missing \(e.g. state.proj_fc.weight.m\)"):
        ckpt.check_matches({"state.fc.weight.m": mx.zeros(2)}, expected, "AdamW state", file, fresh)


def test_checkpoints_under_a_name_the_locale_cannot_encode_are_written_and_read(tmp_path):
    """Under ``LC_ALL=C`` with Python's UTF-8 mode off, saving a checkpoint in ``实验 🎵/`` failed with
    'std::bad_cast' (MLX takes a path as UTF-8 text, which a name decoded with surrogate escapes is not)."""
    (tmp_path / "实验 🎵").mkdir()
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0"}
    env["PYTHONPATH"] = os.pathsep.join(
        str(p) for p in (repo, repo / "tests", env.get("PYTHONPATH", "")) if p
    )
    code = (
        "import os, sys; from pathlib import Path\n"
        "import audiotrain; from audiotrain.train import checkpoint as ckpt; import mlx.core as mx\n"
        "from checkpoint_writer import minimal_state\n"
        "assert sys.getfilesystemencoding() == 'ascii'\n"
        "folder = Path(os.listdir('.')[0]) / 'last'\n"
        "ckpt.write_checkpoint(folder, {'w': mx.arange(3.0)}, {'m': mx.array([1])}, {}, minimal_state(1))\n"
        "print(ckpt.read_arrays(folder / ckpt.MODEL_FILE)['w'].tolist())\n"
    )
    done = subprocess.run(
        [sys.executable, "-X", "utf8=0", "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[0.0, 1.0, 2.0]"
    assert (tmp_path / "实验 🎵" / "last" / ckpt.MODEL_FILE).is_file()


def _save_paused_in_its_swap(monkeypatch, folder: Path, step: int, name: str = "best"):
    """Start a save of `name` (step `step`) in a thread that pauses between the swap's two renames, as a
    running fit's save does for an instant; returns (the thread, the event set once `name` is missing, the
    event that lets the save go on)."""
    import threading

    real = os.replace
    in_gap, go_on, thread_id = threading.Event(), threading.Event(), []

    def replace(src, dst):
        real(src, dst)
        if thread_id == [threading.get_ident()] and Path(dst).name.startswith(f".{name}.prev-"):
            in_gap.set()
            # `name` is missing; its .tmp- (locked) and .prev- are there, until the test lets it go on (it
            # paused 0.5 s: a test thread late by that much on a loaded machine found the save done).
            go_on.wait(60)

    monkeypatch.setattr(ckpt.os, "replace", replace)

    def save():
        thread_id.append(threading.get_ident())
        _write(folder, step, name)

    writer = threading.Thread(target=save)
    writer.start()
    return writer, in_gap, go_on


def _go_on_once_a_load_sees_it(monkeypatch, folder: Path, go_on, name: str = "best") -> None:
    """Let the save `_save_paused_in_its_swap` paused go on once a load has found it under way (`name`
    missing, `ckpt.being_saved` true): the load waits for it from then on."""
    being_saved = ckpt.being_saved

    def seen_being_saved(path):
        saved = being_saved(path)
        if saved and not (folder / name).exists():
            go_on.set()
        return saved

    monkeypatch.setattr(ckpt, "being_saved", seen_being_saved)


def test_a_load_during_a_live_save_waits_for_it_and_never_takes_its_temporary_folder(tmp_path, monkeypatch):
    """A load in the instant between a running fit's two renames found `best` missing and took the writer's
    .best.tmp- folder (or the .best.prev- it deletes next) for one "left by an interrupted save"."""
    _write(tmp_path, 1, "best")
    writer, in_gap, go_on = _save_paused_in_its_swap(monkeypatch, tmp_path, 2)
    try:
        assert in_gap.wait(10)
        assert not (tmp_path / "best").exists() and ckpt.being_saved(tmp_path / "best")
        _go_on_once_a_load_sees_it(monkeypatch, tmp_path, go_on)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "left by an interrupted save"
            folder = ckpt.resolve_checkpoint(tmp_path / "best")
        assert folder == tmp_path / "best" and _step_of(folder) == 2
    finally:
        go_on.set()
        deadlines.join(writer, "the save paused in its swap to finish", 120)
    # A save that really was interrupted (its writer is gone) is still recovered from.
    os.replace(tmp_path / "best", tmp_path / ".best.prev-0123abcd")
    assert not ckpt.being_saved(tmp_path / "best")
    with pytest.warns(UserWarning, match="interrupted save"):
        assert ckpt.resolve_checkpoint(tmp_path / "best") == tmp_path / ".best.prev-0123abcd"


def test_a_resume_of_an_interrupted_saves_leftover_warns_of_it_once(tmp_path):
    """A chords --resume RUN/checkpoints/last whose `last` a kill left as .last.prev- printed "is missing;
    loading ... left by an interrupted save" six times: each place that reads the checkpoint warned."""
    _write(tmp_path, 1)
    os.replace(tmp_path / "last", tmp_path / ".last.prev-0123abcd")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = ckpt.resolve_checkpoint(tmp_path / "last")
        again = ckpt.resolve_checkpoint(tmp_path / "last")
    assert first == again == tmp_path / ".last.prev-0123abcd"
    assert [str(w.message) for w in caught] == [
        f"{tmp_path / 'last'} is missing; loading {first} left by an interrupted save"
    ]


def test_a_torn_read_is_made_again_and_otherwise_says_a_save_replaced_the_checkpoint(tmp_path):
    _write(tmp_path, 1)
    steps = []

    def read(folder):  # a save of the running fit replaces `last` after the state is read, the first time
        state = ckpt.read_state(folder)
        if not steps:
            _write(tmp_path, 2)
        steps.append(state["progress"]["global_step"])
        return state

    state = ckpt.read_unreplaced(tmp_path / "last", ckpt.resolve_checkpoint, read)
    assert steps == [1, 2] and state["progress"]["global_step"] == 2

    def always_torn(folder):
        _write(tmp_path, 3)
        return ckpt.read_state(folder)

    with pytest.raises(
        ckpt.CheckpointError, match=r"last: the checkpoint was replaced by a save of a running"
    ):
        ckpt.read_unreplaced(tmp_path / "last", ckpt.resolve_checkpoint, always_torn)
    with pytest.raises(ckpt.CheckpointError, match="not a complete audiotrain checkpoint"):  # not torn: as is
        ckpt.read_unreplaced(tmp_path, ckpt.resolve_checkpoint, ckpt.read_state)


def test_a_resume_whose_checkpoint_a_save_replaces_midway_loads_one_save_whole(tmp_path, monkeypatch):
    """fit(ckpt_path=X/last) while another fit saved X/last read the trainer state of one save and the weights
    of the next, without a word (a resume then trained on from the mixed state)."""
    _, saved_1 = trained(tmp_path / "one", max_epochs=1)
    _, saved_2 = trained(tmp_path / "two", max_epochs=2)
    last = tmp_path / "X" / "last"
    ckpt.copy_checkpoint(tmp_path / "one" / "checkpoints" / "last", last)
    read_arrays, models_read = ckpt.read_arrays, []

    def read_and_save_meanwhile(file, *args, **kwargs):
        if file.name == ckpt.MODEL_FILE:
            models_read.append(file)
            if len(models_read) == 1:  # the other fit's save swaps its folder in after the state was read
                ckpt.copy_checkpoint(tmp_path / "two" / "checkpoints" / "last", last)
        return read_arrays(file, *args, **kwargs)

    monkeypatch.setattr(ckpt, "read_arrays", read_and_save_meanwhile)
    fresh = TinyClassifier()
    t = make_trainer(tmp_path / "resume", max_epochs=2, enable_checkpointing=False)
    t.fit(fresh, make_batches(), ckpt_path=last)
    assert len(models_read) == 2  # read again
    # The second save whole: its 2 epochs were done, so nothing trained; its own weights, its own step.
    assert t.global_step == 12 and t.current_epoch == 2
    assert all(np.array_equal(a, b) for a, b in zip(weights(fresh).values(), weights(saved_2).values()))
    assert not all(np.array_equal(a, b) for a, b in zip(weights(fresh).values(), weights(saved_1).values()))


def test_load_from_checkpoint_whose_checkpoint_a_save_replaces_midway_loads_one_save_whole(
    tmp_path, monkeypatch
):
    """Its hyperparameters were read from one save and its weights from the next: a model built with the
    one's hidden size failed with "does not match this model" (or took the other's weights without a word)."""

    class Sized(TinyClassifier):
        def __init__(self, hidden: int = 16):
            super().__init__(hidden=hidden)
            self.save_hyperparameters()

    for name, hidden in (("one", 16), ("two", 8)):
        make_trainer(tmp_path / name, max_epochs=1).fit(Sized(hidden), make_batches())
    last = tmp_path / "X" / "last"
    ckpt.copy_checkpoint(tmp_path / "one" / "checkpoints" / "last", last)
    read_checked, models_read = ckpt.read_checked, []

    def read_and_save_meanwhile(file, *args, **kwargs):
        models_read.append(file)
        if len(models_read) == 1:  # a running fit's save swaps its folder in after the state was read
            ckpt.copy_checkpoint(tmp_path / "two" / "checkpoints" / "last", last)
        return read_checked(file, *args, **kwargs)

    monkeypatch.setattr(ckpt, "read_checked", read_and_save_meanwhile)
    loaded = Sized.load_from_checkpoint(last)
    assert len(models_read) == 2 and loaded.hparams["hidden"] == 8
    assert np.array_equal(
        np.array(loaded.fc2.bias), np.array(mx.load(str(last / ckpt.MODEL_FILE))["fc2.bias"])
    )


def _strict_json(path):
    """`path` read as strict JSON (as JSON.parse, Go or serde_json read it): a bare NaN / Infinity fails."""

    def refuse(token):
        raise ValueError(f"{path}: non-standard JSON token {token}")

    return json.loads(Path(path).read_text(), parse_constant=refuse)


class _NoFramesMetric(TinyClassifier):
    # An accuracy over no frame (a song annotated N throughout has no root to score) is NaN.
    def compute_loss(self, batch):
        loss, metrics = super().compute_loss(batch)
        return loss, {**metrics, "root_acc": mx.array(float("nan"))}


def _fit_with_nan_metric(root, ckpt_path=None):
    from audiotrain import seed_everything
    from audiotrain.train.loggers import CSVLogger

    every = ModelCheckpoint(every_n_train_steps=4, save_top_k=-1)
    trainer = make_trainer(root, max_epochs=2, callbacks=[every], logger=CSVLogger(root), compile=True)
    seed_everything(0)
    batches = make_batches()
    trainer.fit(_NoFramesMetric(), batches, batches[:2], ckpt_path=ckpt_path)
    return trainer


def _same(a, b):
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)  # (NaN == NaN here)


@pytest.mark.filterwarnings("ignore:ModelCheckpoint. the resumed checkpoint's ModelCheckpoint saved to")
def test_nan_metrics_are_null_in_history_and_checkpoints_and_resume_as_nan(tmp_path):
    # history.json and trainer_state.json held bare NaN, which JSON.parse / Go / serde_json reject, while
    # scores.json writes null. Now both write null; a resumed run still has NaN where it had NaN.
    straight = _fit_with_nan_metric(tmp_path / "a")
    first = next((tmp_path / "a" / "checkpoints").glob("epoch=1-step=8*"))
    state = _strict_json(first / ckpt.STATE_FILE)  # mid-epoch 1: epoch 0's row, epoch 1's running means
    assert state["history"]["rows"][0]["val_root_acc"] is None
    assert state["running_means"]["pending"][0][0]["train_root_acc"] is None
    history = _strict_json(straight.export_history(tmp_path / "history.json"))
    assert history["val_root_acc"] == [None, None] and None not in history["val_loss"]
    assert np.isnan(straight.history["val_root_acc"]).all()
    assert _same(read_history(tmp_path / "history.json"), straight.history)  # (what a cv resume reads)

    resumed = _fit_with_nan_metric(tmp_path / "b", str(first))
    untimed = [{k: v for k, v in t.history.items() if k != "time"} for t in (straight, resumed)]
    assert _same(*untimed) and np.isnan(resumed.history["train_root_acc"]).all()
    assert np.isnan(float(resumed.callback_metrics["val_root_acc"]))
    for saved in (tmp_path / "a" / "checkpoints").iterdir():  # every checkpoint: strict JSON too
        _strict_json(saved / ckpt.STATE_FILE)


class _ScoredFromEpoch1(TinyClassifier):
    # A score over nothing yet (NaN) in the first epoch, 0.5 from the second.
    def compute_loss(self, batch):
        loss, metrics = super().compute_loss(batch)
        return loss, {**metrics, "score": mx.array(float("nan") if self.current_epoch == 0 else 0.5)}


def test_a_max_mode_checkpoints_nan_score_resumes_as_the_worst_not_the_best(tmp_path):
    """A NaN score ranks as -inf in mode "max" and is written as null with "-Infinity" beside it: read back
    as +inf, the NaN checkpoint would have been the best for the rest of the run."""

    def fit(max_epochs, ckpt_path=None):
        best = ModelCheckpoint(tmp_path / "ckpts", monitor="val_score", mode="max", save_top_k=2)
        trainer = make_trainer(tmp_path, max_epochs=max_epochs, callbacks=[best])
        trainer.fit(_ScoredFromEpoch1(), make_batches(), make_batches(32), ckpt_path=ckpt_path)
        return best

    first = fit(1)
    [nan_path] = first.best_k_models
    assert first.best_k_models[nan_path] == -np.inf and first.kth_value == -np.inf
    resumed = fit(2, ckpt_path=nan_path)
    assert resumed.best_k_models[nan_path] == -np.inf
    assert resumed.best_model_path != nan_path and resumed.best_model_score == 0.5


@pytest.mark.filterwarnings("ignore:ModelCheckpoint. the resumed checkpoint's ModelCheckpoint saved to")
def test_a_checkpoint_written_with_bare_nan_still_resumes_as_nan(tmp_path):
    # Checkpoints from before null was written hold a bare NaN, which Python's JSON reads.
    straight = _fit_with_nan_metric(tmp_path / "a")
    first = next((tmp_path / "a" / "checkpoints").glob("epoch=1-step=8*"))
    state = ckpt.read_state(first)
    (first / ckpt.STATE_FILE).write_text(json.dumps(state, indent=1))  # NaN bare, no list of them
    assert "NaN" in (first / ckpt.STATE_FILE).read_text()
    resumed = _fit_with_nan_metric(tmp_path / "b", str(first))
    untimed = [{k: v for k, v in t.history.items() if k != "time"} for t in (straight, resumed)]
    assert _same(*untimed) and np.isnan(resumed.history["val_root_acc"]).all()


def test_a_command_that_loaded_a_checkpoint_exits_with_its_own_status(tmp_path, monkeypatch):
    # MLX releases a Python file object it reads from on its own threads, taking the GIL: one released while
    # Python exited aborted the process (status 134, "terminate called without an active exception") after
    # a refused resume had printed its error, in about 1 run of 4. MLX is given a file name, never an object.
    path = tmp_path / "arrays.safetensors"
    mx.save_safetensors(str(path), {"a": mx.arange(4, dtype=mx.float32), "b": mx.ones((2, 2))})
    given = []
    real_load = mx.load
    monkeypatch.setattr(
        mx, "load", lambda file, *args, **kwargs: given.append(file) or real_load(file, **kwargs)
    )
    loaded = ckpt.read_arrays(path)
    assert np.array_equal(np.array(loaded["a"]), np.arange(4)) and loaded.keys() == {"a", "b"}
    assert given and all(isinstance(file, str) for file in given), given
    script = "import sys; from pathlib import Path; from audiotrain.train import checkpoint as c; "
    script += f"c.read_arrays(Path({str(path)!r})); sys.exit(2)"
    statuses = {subprocess.run([sys.executable, "-c", script]).returncode for _ in range(3)}
    assert statuses == {2}


def test_a_missing_last_says_save_last_keeps_one(tmp_path):
    """The seed's tutorial resumes from ./checkpoints/last, which only save_last=True keeps."""
    from audiotrain.train.checkpoint import CheckpointError, resolve_checkpoint

    with pytest.raises(CheckpointError, match=r"last does not exist \(a `last` checkpoint is kept only with"):
        resolve_checkpoint(tmp_path / "checkpoints" / "last")


def test_resuming_a_fit_that_ended_before_its_first_save_says_its_folder_holds_none(tmp_path):
    """A fit killed (kill -9) or failed before its first save leaves its claimed folder empty; resuming its
    `last` said "a `last` checkpoint is kept only with ModelCheckpoint(..., save_last=True)", a setting the
    run had (and the recipes' CLI users cannot change). It now says the folder holds no checkpoint."""
    from audiotrain.train.callbacks import Callback

    class FailsAtTheFirstStep(Callback):
        def on_train_batch_end(self, *args):
            raise RuntimeError("out of memory")

    folder = tmp_path / "ck"
    with pytest.raises(RuntimeError, match="out of memory"):
        trained(
            tmp_path,
            max_epochs=1,
            callbacks=[ModelCheckpoint(dirpath=folder, save_last=True), FailsAtTheFirstStep()],
        )
    resume = make_trainer(tmp_path, max_epochs=1, callbacks=[ModelCheckpoint(dirpath=folder, save_last=True)])
    with pytest.raises(
        ckpt.CheckpointError, match=r"ck/last does not exist; .*ck holds no checkpoint"
    ) as err:
        resume.fit(TinyClassifier(), make_batches(), ckpt_path=folder / "last")
    assert "save_last" not in str(err.value)


def test_a_mistyped_checkpoint_path_is_not_called_a_fit_that_ended_before_its_first_save(tmp_path):
    """validate(ckpt_path=) of a path that is not there, in a folder without checkpoints (a typo, the wrong
    folder), was told "a fit killed (kill -9, out of memory) ... there is nothing to resume, start it again":
    that is said of a `last` alone (the name a resume reads), as for the fit that failed before its save."""
    (tmp_path / "runs").mkdir()
    for typo in (tmp_path / "runs" / "bset", tmp_path / "model_final"):
        with pytest.raises(ckpt.CheckpointError) as err:
            make_trainer(tmp_path).validate(TinyClassifier(), make_batches(), ckpt_path=typo)
        assert str(err.value) == f"checkpoint folder {typo} does not exist"


def test_a_lightning_ckpt_file_name_says_checkpoints_are_folders_and_names_the_one_meant(tmp_path):
    """Lightning's habit, `last.ckpt` or best_model_path + ".ckpt", was told only 'checkpoint folder
    .../last.ckpt does not exist' and a list: the error says why (a folder, without .ckpt) and which one."""
    mc = ModelCheckpoint(dirpath=tmp_path / "ck", save_last=True)
    trained(tmp_path, max_epochs=1, callbacks=[mc])
    with pytest.raises(ckpt.CheckpointError) as err:
        TinyClassifier.load_from_checkpoint(tmp_path / "ck" / "last.ckpt")
    assert "is a folder of safetensors + JSON files, named without the .ckpt" in str(err.value)
    assert f"of Lightning's checkpoint files: pass {tmp_path / 'ck' / 'last'};" in str(err.value)
    with pytest.raises(
        ckpt.CheckpointError, match=r"named without the .ckpt of Lightning's checkpoint files$"
    ):
        (tmp_path / "empty").mkdir()
        make_trainer(tmp_path).validate(
            TinyClassifier(), make_batches(), ckpt_path=tmp_path / "empty" / "a.ckpt"
        )


def test_a_checkpoint_under_the_home_folder_given_with_a_tilde_loads(tmp_path, monkeypatch):
    """ModelCheckpoint(dirpath="~/ck") saved into the home folder, but fit, validate and load_from_checkpoint
    given ckpt_path="~/ck/last" said 'checkpoint folder ~/ck/last does not exist (a `last` checkpoint is kept
    only with ModelCheckpoint(..., save_last=True), ...)': the folder was there, and was saved with it."""
    monkeypatch.setenv("HOME", str(tmp_path))
    t, module = trained(
        tmp_path / "run", max_epochs=2, callbacks=[ModelCheckpoint(dirpath="~/ck", save_last=True)]
    )
    assert (tmp_path / "ck" / "last" / ckpt.STATE_FILE).is_file()
    for given in ("~/ck/last", Path("~", "ck", "last")):
        out = make_trainer(tmp_path / "other", max_epochs=1).validate(
            TinyClassifier(), make_batches(32), ckpt_path=given
        )
        assert out == make_trainer(tmp_path / "other", max_epochs=1).validate(module, make_batches(32))
        assert weights(TinyClassifier.load_from_checkpoint(given)).keys() == weights(module).keys()
        resumed = make_trainer(tmp_path / "other", max_epochs=3)
        resumed.fit(TinyClassifier(), make_batches(), ckpt_path=given)
        assert resumed.current_epoch == 3


def test_a_checkpoint_and_a_history_saved_with_a_tilde_go_where_their_loads_read(tmp_path, monkeypatch):
    """trainer.save_checkpoint("~/saved") (seed 000's save_checkpoint / load_checkpoint pair) wrote a folder
    named '~' in the working folder and returned '~/saved', and export_history("~/h.json") wrote beside it,
    while load_checkpoint and load_from_checkpoint of that very path read the home folder (dd2d917f) and said
    'checkpoint folder <home>/saved does not exist'. Both writers now expand a leading ~ as the loads do."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    t, module = trained(tmp_path / "run", max_epochs=1)
    saved = t.save_checkpoint("~/saved")
    assert saved == tmp_path / "home" / "saved"
    assert (saved / ckpt.STATE_FILE).is_file()
    assert t.export_history("~/h.json") == tmp_path / "home" / "h.json"
    assert not (tmp_path / "~").exists()
    t.load_checkpoint("~/saved")
    assert weights(TinyClassifier.load_from_checkpoint(saved)).keys() == weights(module).keys()


def test_trainer_ckpt_path_set_by_the_user_is_loaded_by_the_next_stages(tmp_path):
    """Lightning 2.6.6's stateful form (NeMo's pattern): after `trainer.ckpt_path = path`, `fit(model)` resumes
    from it and `validate(model)` / `test` score its weights, and trainer.ckpt_path stays set; a stage given
    another ckpt_path loads that one, with the warning "`trainer.ckpt_path = ...` was called but then you
    passed `trainer.fit(ckpt_path=...)`. The latter will be loaded."; set to None, a stage given the model
    loads none. It was a plain attribute here, that nothing read: fit trained from scratch."""
    from audiotrain.train.callbacks import Callback

    class Steps(Callback):
        def __init__(self):
            self.steps = 0

        def on_train_batch_end(self, *args):
            self.steps += 1

    trained(tmp_path, max_steps=2)
    last = tmp_path / "checkpoints" / "last"
    steps = Steps()
    t = make_trainer(tmp_path, max_steps=4, callbacks=[steps])
    t.ckpt_path = last
    fresh = TinyClassifier()
    t.fit(fresh, make_batches())
    assert (steps.steps, t.global_step) == (2, 4)  # resumed at step 2
    assert t.ckpt_path is not None and Path(t.ckpt_path) == last
    saved = weights(fresh)  # (the resumed fit went on in that run's folder: its last holds step 4)

    t.ckpt_path = last
    other = TinyClassifier()
    t.validate(other, make_batches(16))
    assert all(np.array_equal(saved[k], v) for k, v in weights(other).items())

    t.max_steps = 5
    with pytest.warns(
        UserWarning, match=r"trainer.ckpt_path = .* but then you passed `trainer.fit\(ckpt_path="
    ):
        t.fit(TinyClassifier(), make_batches(), ckpt_path=last)
    assert t.global_step == 5
    t.ckpt_path = None
    unloaded = TinyClassifier()
    before = weights(unloaded)
    t.validate(unloaded, make_batches(16))
    assert t.ckpt_path is None
    assert all(np.array_equal(before[k], v) for k, v in weights(unloaded).items())
    with pytest.raises(TypeError, match="Trainer.ckpt_path must be a checkpoint folder"):
        t.ckpt_path = 3


def test_a_trainer_ckpt_path_whose_load_failed_stays_set_for_the_next_stage(tmp_path):
    """Lightning 2.6.6 sets the path it loads before loading it (`resume_start`), so after a stage whose load
    failed (an on_load_checkpoint that raised) `trainer.ckpt_path` still names the path the user set and the
    next `validate(model)` loads it. Here the failed stage left it None while still marked the user's: the
    next validate scored the model's own (untrained) weights, silently."""

    class FailsToLoad(TinyClassifier):
        def on_load_checkpoint(self, checkpoint):
            raise ValueError("cannot load")

    t, _ = trained(tmp_path, max_epochs=1)
    last = Path(t.checkpoint_callback.last_model_path)
    saved = weights(TinyClassifier.load_from_checkpoint(last))
    t = make_trainer(tmp_path)
    t.ckpt_path = last
    with pytest.raises(ValueError, match="cannot load"):
        t.validate(FailsToLoad(), make_batches(16))
    assert t.ckpt_path is not None and Path(t.ckpt_path) == last
    fresh = TinyClassifier()
    t.validate(fresh, make_batches(16))
    assert all(np.array_equal(saved[k], v) for k, v in weights(fresh).items())


def test_a_ckpt_path_best_that_names_nothing_is_not_left_as_trainer_ckpt_path(tmp_path):
    """Lightning 2.6.6 resolves "best" (`_select_ckpt_path`) before it sets the path it loads, so a
    `validate(ckpt_path="best")` with nothing saved raises and leaves `trainer.ckpt_path` None. Here the
    stage set the unresolved "best" first: after the error `trainer.ckpt_path` read "best"."""
    t = make_trainer(tmp_path)
    with pytest.raises(ValueError, match='ckpt_path="best"'):
        t.validate(TinyClassifier(), make_batches(16), ckpt_path="best")
    assert t.ckpt_path is None


class LeavesOutItsEncoder(TinyClassifier):
    """A pretrained, frozen encoder (fc1) left out of every checkpoint by `state_dict()`, and a
    `load_state_dict` that accepts a checkpoint without it: Lightning 2.6.6 saves `model.state_dict()` and
    loads through `model.load_state_dict(..., strict=True)` (measured: the .ckpt holds only head keys, resume
    and load_from_checkpoint work, the encoder keeps the values it was built with)."""

    def __init__(self):
        super().__init__()
        self.fc1.freeze()

    def state_dict(self):
        return {k: v for k, v in super().state_dict().items() if not k.startswith("fc1.")}

    def load_state_dict(self, state_dict, strict=True):
        return super().load_state_dict(state_dict, strict=False)


def _saved_names(folder) -> list[str]:
    return sorted(mx.load(str(folder / "model.safetensors")))


def test_a_state_dict_override_leaves_the_encoder_out_and_resume_and_load_keep_its_built_values(tmp_path):
    mx.random.seed(0)
    whole = LeavesOutItsEncoder()
    make_trainer(tmp_path / "whole", max_epochs=2).fit(whole, make_batches())
    mx.random.seed(0)
    first = LeavesOutItsEncoder()
    built = weights(first)
    make_trainer(tmp_path / "a", max_epochs=1).fit(first, make_batches())
    last = tmp_path / "a" / "checkpoints" / "last"
    assert _saved_names(last) == ["fc2.bias", "fc2.weight"]
    mx.random.seed(1)  # (another encoder than the one trained with: it keeps it, as in Lightning)
    loaded = LeavesOutItsEncoder.load_from_checkpoint(last)
    mx.random.seed(1)
    assert np.array_equal(weights(loaded)["fc1.weight"], weights(LeavesOutItsEncoder())["fc1.weight"])
    np.testing.assert_array_equal(weights(loaded)["fc2.weight"], weights(first)["fc2.weight"])
    assert not np.array_equal(weights(first)["fc2.weight"], built["fc2.weight"])
    mx.random.seed(0)  # (the encoder as it is built: from its pretrained weights in real use)
    resumed = LeavesOutItsEncoder()
    make_trainer(tmp_path / "a", max_epochs=2).fit(resumed, make_batches(), ckpt_path=last)
    for name, value in weights(whole).items():  # exact resume: the encoder is the one built
        np.testing.assert_array_equal(weights(resumed)[name], value)


class OldNames(TinyClassifier):
    """Weights saved under an old format's names, and read back from them (Lightning: the .ckpt holds the
    renamed keys, and the matching `load_state_dict` override is called on resume and load)."""

    def state_dict(self):
        return {"old." + k: v for k, v in super().state_dict().items()}

    def load_state_dict(self, state_dict, strict=True):
        return super().load_state_dict({k.removeprefix("old."): v for k, v in state_dict.items()}, strict)


def test_a_renaming_state_dict_is_saved_and_its_load_state_dict_reads_it(tmp_path):
    mx.random.seed(0)
    module = OldNames()
    t = make_trainer(tmp_path, max_epochs=1)
    t.fit(module, make_batches())
    last = tmp_path / "checkpoints" / "last"
    assert _saved_names(last) == ["old.fc1.bias", "old.fc1.weight", "old.fc2.bias", "old.fc2.weight"]
    t.save_checkpoint(tmp_path / "weights", weights_only=True)
    assert _saved_names(tmp_path / "weights") == _saved_names(last)
    for path in (last, tmp_path / "weights"):
        loaded = OldNames.load_from_checkpoint(path)
        for name, value in weights(module).items():
            np.testing.assert_array_equal(weights(loaded)[name], value)
    resumed = OldNames()
    make_trainer(tmp_path, max_epochs=2).fit(resumed, make_batches(), ckpt_path=last)
    assert resumed.trainer.global_step == 12


class ReturnsA(TinyClassifier):
    def __init__(self, what):
        super().__init__()
        self.what = what

    def state_dict(self):
        own = super().state_dict()
        return list(own.values()) if self.what == "list" else {"net": own}


@pytest.mark.parametrize(("what", "match"), [("list", "returned a list"), ("nested", "'net' holds a nested")])
def test_a_state_dict_that_cannot_be_saved_is_refused_naming_it(tmp_path, what, match):
    module = ReturnsA(what)
    t = make_trainer(tmp_path, max_epochs=1, enable_checkpointing=False)
    t.fit(module, make_batches())
    with pytest.raises(TypeError, match=rf"ReturnsA\.state_dict\(\).*{match}.*flat dict of name") as error:
        t.save_checkpoint(tmp_path / "ckpt")
    assert "ckpt/model.safetensors" in str(error.value)
    assert not (tmp_path / "ckpt").exists()


def test_a_module_without_overrides_saves_every_parameter_under_its_name(tmp_path):
    t, module = trained(tmp_path, max_epochs=1)
    assert _saved_names(tmp_path / "checkpoints" / "last") == sorted(weights(module))


class LeavesOutOnlySaving(TinyClassifier):
    def state_dict(self):
        return {k: v for k, v in super().state_dict().items() if not k.startswith("fc1.")}


def test_a_state_dict_override_without_a_load_state_dict_is_refused_strictly_saying_why(tmp_path):
    """Lightning's strict load of such a checkpoint fails too (measured: `Missing key(s) in state_dict:
    "encoder.weight"`); `strict=False` keeps the module's own values for them."""
    make_trainer(tmp_path, max_epochs=1).fit(LeavesOutOnlySaving(), make_batches())
    last = tmp_path / "checkpoints" / "last"
    with pytest.raises(ckpt.CheckpointError, match=r"missing \(e\.g\. fc1\.bias.*overrides state_dict\(\)"):
        LeavesOutOnlySaving.load_from_checkpoint(last)
    with pytest.warns(UserWarning, match="kept as __init__ made them: fc1.bias, fc1.weight"):
        assert LeavesOutOnlySaving.load_from_checkpoint(last, strict=False) is not None


class LeavesOutATrainedEncoder(LeavesOutItsEncoder):
    def __init__(self):
        super().__init__()
        self.fc1.unfreeze()


def test_the_optimizer_state_of_a_parameter_left_out_of_state_dict_is_saved_and_restored(tmp_path):
    """Lightning saves the optimizer's state by index, of every parameter: a resume puts back the moments of
    an encoder its `state_dict()` left out (measured: state of all 4 parameters in the .ckpt), while the
    encoder's weights are those it was built with."""
    mx.random.seed(0)
    module = LeavesOutATrainedEncoder()
    t = make_trainer(tmp_path, max_epochs=1)
    t.fit(module, make_batches())
    saved = ckpt.flat(t.optimizer.state)
    last = tmp_path / "checkpoints" / "last"
    assert "fc1.weight.m" in mx.load(str(last / "optimizer.safetensors"))
    mx.random.seed(0)
    resumed = LeavesOutATrainedEncoder()
    fresh = weights(resumed)
    again = make_trainer(tmp_path, max_epochs=1)
    with pytest.warns(UserWarning, match="nothing to train"):  # (the state as restored)
        again.fit(resumed, make_batches(), ckpt_path=last)
    np.testing.assert_array_equal(
        np.array(ckpt.flat(again.optimizer.state)["fc1.weight.m"]), saved["fc1.weight.m"]
    )
    np.testing.assert_array_equal(weights(resumed)["fc1.weight"], fresh["fc1.weight"])
