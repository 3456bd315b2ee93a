"""What a fit reports (interval and epoch means, the non-finite stop): the loggers, the history and the
callbacks see the same numbers for the same batches."""

import json

import audiotrain  # noqa: F401  (before mlx)

import mlx.core as mx
import mlx.nn as nn
import pytest
from tasks import RecordingLogger, TinyClassifier, make_batches, quiet_trainer


def trainer(tmp_path, **kwargs):
    return quiet_trainer(tmp_path, **kwargs)


class BatchSizeLoss(TinyClassifier):
    """Loss = the batch's size, so a weighted and an unweighted mean of it differ."""

    def compute_loss(self, batch):
        x, y = batch
        loss = mx.mean(nn.losses.cross_entropy(self(x), y)) * 0 + x.shape[0]
        return loss, {}


# ---------------------------------------------------------------- defect 8: weighted interval means
def test_the_interval_means_the_loggers_get_are_weighted_like_the_epoch_means(tmp_path):
    """The interval train_* means were unweighted means of batch means while the epoch means were
    weighted: the loggers and the history disagreed about the same batches."""
    logger = RecordingLogger()
    t = trainer(tmp_path, max_epochs=1, log_every_n_steps=2, logger=logger)
    t.fit(BatchSizeLoss(), make_batches(20, 16))  # batches of 16 and 4: one interval = the epoch
    (interval,) = [m for _, m in logger.metrics if "train_loss" in m]
    weighted = (16 * 16 + 4 * 4) / 20
    assert interval["train_loss"] == pytest.approx(weighted)
    assert t.history["train_loss"] == [pytest.approx(weighted)]


# ---------------------------------------------------------------- defect 7: the stop without the guard
class NaNLoss(TinyClassifier):
    def compute_loss(self, batch):
        loss, metrics = super().compute_loss(batch)
        return loss * mx.array(float("nan")), metrics


def test_max_consecutive_nonfinite_stops_training_without_the_guard_too(tmp_path):
    """With nonfinite_guard=False, training on NaN went on silently."""
    t = trainer(
        tmp_path, max_epochs=5, nonfinite_guard=False, max_consecutive_nonfinite=3, log_every_n_steps=1
    )
    with pytest.raises(FloatingPointError, match="with nonfinite_guard=False those updates were applied"):
        t.fit(NaNLoss(), make_batches())
    assert t.global_step == 3


def test_with_the_guard_the_stop_keeps_the_last_good_state(tmp_path):
    t = trainer(
        tmp_path, max_epochs=5, enable_checkpointing=True, max_consecutive_nonfinite=3, log_every_n_steps=1
    )
    with pytest.raises(FloatingPointError, match="those updates were skipped.*saved in"):
        t.fit(NaNLoss(), make_batches())


@pytest.mark.parametrize("guard, accumulate", [(True, 1), (False, 1), (True, 2)])
def test_the_nonfinite_stop_comes_one_batch_after_the_limit_not_at_the_logging_step(
    tmp_path, guard, accumulate
):
    """The streak was read only at logging steps and epoch ends: a limit of 3 ran 20 NaN steps (a whole
    epoch, or 50 at the default log_every_n_steps). It is read one batch later, with the step before's
    results, which the loop waits for anyway."""
    t = trainer(
        tmp_path,
        max_epochs=1,
        nonfinite_guard=guard,
        max_consecutive_nonfinite=3,
        accumulate_grad_batches=accumulate,
    )
    with pytest.raises(FloatingPointError, match="optimizer steps in a row"):
        t.fit(NaNLoss(), make_batches(160, 4))  # 40 batches, log_every_n_steps=50
    assert t.global_step == 3 + (accumulate == 1)  # the step that reached the limit, at most one more
    assert t.progress.total_batches == 3 * accumulate + 1


class KeepsValidationOutputs(TinyClassifier):
    """Lightning 2's idiom: keep each validation_step's loss, aggregate them in on_validation_epoch_end."""

    def __init__(self, read_in_hook: bool = False):
        super().__init__()
        self.validation_step_outputs = []
        self.read_in_hook = read_in_hook

    def validation_step(self, batch, batch_idx):
        loss, metrics = self.compute_loss(batch)
        self.validation_step_outputs.append(loss)
        return loss, metrics

    def on_validation_epoch_end(self):
        mean = mx.stack(self.validation_step_outputs).mean()
        if self.read_in_hook:
            mean.item()
        self.log("val_loss_kept", mean)
        self.validation_step_outputs.clear()


@pytest.mark.parametrize(
    # (logged: the epoch's running sum is evaluated as it is added, in the hook that logs it)
    "read_in_hook, where",
    [(False, "on_validation_epoch_end"), (True, "on_validation_epoch_end")],
)
def test_values_kept_from_a_compiled_step_are_explained_not_an_mlx_bug(tmp_path, read_in_hook, where):
    t = trainer(tmp_path, max_epochs=1)
    with pytest.raises(RuntimeError, match=rf"KeepsValidationOutputs.{where}.*kept after it") as raised:
        t.fit(KeepsValidationOutputs(read_in_hook), make_batches(), make_batches(32))
    message = str(raised.value)
    assert "self.log(name, value, on_epoch=True)" in message and "compile=False" in message
    # (per-sample values: returned in a dict, which the batch-end hook gets compiled too)
    assert "on_validation_batch_end(outputs, batch, batch_idx) gets as arrays" in message
    assert "mlx/issues" not in message
    # As the message says, without compile the idiom works.
    t = trainer(tmp_path / "eager", max_epochs=1, compile=False)
    t.fit(KeepsValidationOutputs(read_in_hook), make_batches(), make_batches(32))
    assert t.callback_metrics["val_loss_kept"] == pytest.approx(t.callback_metrics["val_loss"], rel=1e-3)


def test_values_kept_from_a_compiled_step_are_explained_and_leave_the_model_usable(tmp_path):
    """After the explanation above, the model still held the kept placeholders, and its next trainer.test
    (which reads none of them) failed with MLX's raw "eval an array without a primitive" instead."""
    module = KeepsValidationOutputs()
    t = trainer(tmp_path, max_epochs=1)
    with pytest.raises(RuntimeError, match="kept after it"):
        t.validate(module, make_batches(32))
    assert module.validation_step_outputs == []
    (metrics,) = t.test(module, make_batches(32))
    assert 0 < metrics["test_loss"] < 10


class KeepsTestOutputsAndReturnsNothing(TinyClassifier):
    """Lightning's test_step that keeps its loss for on_test_epoch_end and returns nothing."""

    def __init__(self):
        super().__init__()
        self.test_step_outputs = []

    def test_step(self, batch, batch_idx):
        self.test_step_outputs.append(self.compute_loss(batch)[0])


def test_a_step_that_failed_while_traced_leaves_no_placeholder_in_the_module(tmp_path):
    """The step's error named what to change, but the loss it had appended to the module stayed there, a
    placeholder of the failed trace: every later validate, test or fit of that model failed with MLX's
    "eval an array without a primitive ... may be a bug" instead."""
    module = KeepsTestOutputsAndReturnsNothing()
    t = trainer(tmp_path, max_epochs=1)
    with pytest.raises(TypeError, match="test_step returned None and logged nothing"):
        t.test(module, make_batches(32))
    assert module.test_step_outputs == []
    (metrics,) = t.validate(module, make_batches(32))
    assert 0 < metrics["val_loss"] < 10


class FailsAtEpochEnd(TinyClassifier):
    def on_validation_epoch_end(self):
        raise RuntimeError("my own check failed")


def test_a_hooks_own_runtime_error_keeps_its_message(tmp_path):
    """Only MLX's "without a primitive" error is explained as an array kept from a compiled step: a user's
    RuntimeError raised in a hook reaches the user as it was raised."""
    with pytest.raises(RuntimeError, match=r"^my own check failed$"):
        trainer(tmp_path, max_epochs=1).fit(FailsAtEpochEnd(), make_batches(), make_batches(32))


class LogsLightningNames(TinyClassifier):
    """A Lightning-style validation_step: self.log under names that do not start with val_."""

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("valid_loss", mx.mean(nn.losses.cross_entropy(logits, y)))
        self.log("val/acc", mx.mean(mx.argmax(logits, axis=-1) == y))

    def on_validation_epoch_end(self):
        self.log("val epoch end", 1.0)


def test_what_validation_logged_reaches_the_history_whatever_its_name(tmp_path):
    """The history took only val_* names: 'val/acc' (TensorBoard grouping) and 'valid_loss' reached the
    loggers and callbacks but not trainer.history, export_history() or the progress bar."""
    t = trainer(tmp_path, max_epochs=2)
    t.fit(LogsLightningNames(), make_batches(), make_batches(32))
    history = t.history
    for name in ("valid_loss", "val/acc", "val epoch end"):
        assert len(history[name]) == 2 and None not in history[name], name
        assert history[name][-1] == pytest.approx(t.callback_metrics[name])
    assert set(t.progress_metrics()) >= {"valid_loss", "val/acc"}
    exported = json.loads(t.export_history(tmp_path / "history.json").read_text())
    assert exported["val/acc"] == history["val/acc"]


def test_a_resumed_epoch_keeps_what_its_validation_logged_before_the_checkpoint(tmp_path):
    """Validated at batch 4 of 6, saved at batch 5, resumed: epoch 0's row still has that validation."""
    stopped = trainer(tmp_path / "a", max_steps=5, val_check_interval=4)
    stopped.fit(LogsLightningNames(), make_batches(), make_batches(32))
    validated = stopped.callback_metrics["val/acc"]
    saved = stopped.save_checkpoint(tmp_path / "ckpt")
    resumed = trainer(tmp_path / "b", max_epochs=1, val_check_interval=4)
    resumed.fit(LogsLightningNames(), make_batches(), make_batches(32), ckpt_path=str(saved))
    assert resumed.history["epoch"] == [0] and resumed.global_step == 6
    assert resumed.history["val/acc"] == [pytest.approx(validated)]


class NaNOnOddBatches(TinyClassifier):
    """A non-finite loss on every other batch: never enough in a row for the stop."""

    def compute_loss(self, batch):
        loss, metrics = super().compute_loss(batch)
        x, _ = batch
        return mx.where(x[0, 0] > 0, loss * mx.array(float("nan")), loss), metrics


def test_skipped_updates_are_named_in_a_warning_once_a_fit(tmp_path):
    """Skipped updates showed only as `loss=nan` (or not at all) until the streak stopped the run: a run
    whose updates were half skipped finished with no word."""
    t = trainer(tmp_path, max_epochs=2, max_consecutive_nonfinite=50)
    with pytest.warns(UserWarning, match=r"optimizer update\(s\) up to epoch 0 .* were skipped") as seen:
        t.fit(NaNOnOddBatches(), make_batches(64, 4))
    assert len([w for w in seen if "were skipped" in str(w.message)]) == 1
    assert t.current_epoch == 2  # the run went on


def test_no_skipped_update_no_warning(tmp_path, recwarn):
    trainer(tmp_path, max_epochs=1).fit(TinyClassifier(), make_batches())
    assert not [w for w in recwarn if "were skipped" in str(w.message)]


def test_the_run_resumed_from_the_nonfinite_checkpoint_counts_a_new_streak(tmp_path):
    """The checkpoint the stop calls "the last good state" kept the streak at the limit: resumed with clean
    data, the run stopped again at its first step."""
    stopped = trainer(tmp_path, max_epochs=2, enable_checkpointing=True, max_consecutive_nonfinite=3)
    with pytest.raises(FloatingPointError, match=r"max_consecutive_nonfinite=3; found at global step"):
        stopped.fit(NaNLoss(), make_batches(160, 4))
    saved = tmp_path / "checkpoints" / "nonfinite"
    resumed = trainer(tmp_path / "again", max_epochs=2, max_consecutive_nonfinite=3)
    resumed.fit(TinyClassifier(), make_batches(160, 4), ckpt_path=saved)
    assert resumed.current_epoch == 2


def test_export_history_on_a_full_disk_names_the_file_and_leaves_nothing(tmp_path, monkeypatch):
    import errno
    import pathlib

    from audiotrain._files import OutputWriteError
    from audiotrain.train.trainer import Trainer

    def full(tmp, data):  # the history's bytes, into its temporary file
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pathlib.Path, "write_bytes", full)
    target = tmp_path / "history.json"
    with pytest.raises(OutputWriteError) as raised:
        Trainer(logger=False).export_history(target)
    assert str(raised.value) == f"cannot write {target}: no space left on device"
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(target)
    assert list(tmp_path.iterdir()) == []
    # Over an earlier export (overwrite=True), or stopped by Ctrl-C: the earlier file as it was, and no
    # temporary file left beside it to keep the disk full.
    target.write_text('{"epoch": [0]}')
    with pytest.raises(OutputWriteError):
        Trainer(logger=False).export_history(target, overwrite=True)

    def interrupted(tmp, data):
        raise KeyboardInterrupt

    monkeypatch.setattr(pathlib.Path, "write_bytes", interrupted)
    for path, overwrite in ((target, True), (tmp_path / "new.json", False)):
        with pytest.raises(KeyboardInterrupt):
            Trainer(logger=False).export_history(path, overwrite=overwrite)
    assert list(tmp_path.iterdir()) == [target] and target.read_text() == '{"epoch": [0]}'


def test_export_history_refuses_to_replace_a_file_unless_overwrite(tmp_path):
    """export_history replaced any file silently (a user's own notes too), and a folder at the path gave an
    IsADirectoryError naming only an internal temporary file."""
    from audiotrain.train.trainer import Trainer

    trainer = Trainer(logger=False)
    mine = tmp_path / "hist.json"
    mine.write_text("my own notes")
    with pytest.raises(FileExistsError) as refused:
        trainer.export_history(mine)
    assert str(refused.value) == (
        f"export_history: {mine} exists already; choose a new path, or pass overwrite=True to replace it"
    )
    assert mine.read_text() == "my own notes"
    assert json.loads(trainer.export_history(mine, overwrite=True).read_text()) == trainer.history
    folder = tmp_path / "mydata"
    folder.mkdir()
    with pytest.raises(IsADirectoryError) as refused:
        trainer.export_history(folder, overwrite=True)
    assert str(refused.value) == (
        f"export_history: {folder} is a folder; pass a file path such as {folder}/history.json"
    )
    assert list(folder.iterdir()) == []


def test_export_history_replaces_an_earlier_history_so_a_script_runs_again(tmp_path):
    """The README's trainer example ends with ``trainer.export_history("history.json")``: run again in the
    same folder it must not be refused, while a file that is not a history the Trainer wrote still is."""
    from audiotrain.train.trainer import Trainer

    target = tmp_path / "history.json"
    target.write_text(
        json.dumps({"epoch": [0, 1], "step": [4, 8], "time": [0.1, 0.2], "val_loss": [0.5, None]})
    )
    trainer = Trainer(logger=False)
    assert json.loads(trainer.export_history(target).read_text()) == trainer.history
    for users in (
        {"loss": [0.9, 0.5], "val_loss": [1.0, 0.7]},
        {},
        {"classes": ["dog", "cat"]},
        {"epoch": 3},
        {"epoch": [0, 1], "step": [4, 8]},  # no time column
        {"epoch": [0, 1], "step": [4], "time": [0.1, 0.2]},  # columns of different lengths
    ):
        target.write_text(json.dumps(users))  # a Keras history, an empty object, other JSON: the user's
        with pytest.raises(FileExistsError, match="overwrite=True"):
            trainer.export_history(target)
        assert json.loads(target.read_text()) == users


def test_export_history_creates_the_folders_of_its_path(tmp_path):
    from audiotrain.train.trainer import Trainer

    trainer = Trainer(logger=False)
    target = tmp_path / "runs" / "today" / "history.json"
    assert trainer.export_history(target) == target
    assert json.loads(target.read_text()) == trainer.history


def test_a_large_earlier_export_is_replaced_by_its_first_bytes_and_a_users_large_json_is_not(
    tmp_path, monkeypatch
):
    """A history export over 64 MiB (600,000 epochs) was taken for a user's file, and a smaller one was
    parsed whole at every call (an export each epoch cost as much as reading the file back): an export is
    known by its first bytes whatever its size, and a user's JSON over the size that is parsed is still
    refused."""
    from audiotrain.train import reporting

    trainer = quiet_trainer(tmp_path / "run", max_epochs=2, logger=False)
    trainer.fit(TinyClassifier(), make_batches(32))
    target = tmp_path / "history.json"
    trainer.export_history(target)
    monkeypatch.setattr(reporting, "PARSED_AT_MOST", 16)  # every file here counts as large
    parsed = []
    monkeypatch.setattr(reporting, "read_history", lambda path: parsed.append(path))
    for _ in range(2):
        assert json.loads(trainer.export_history(target).read_text()) == trainer.history
    assert parsed == []  # (its first bytes told)
    users = {"epoch": [0, 1], "step": [4, 8], "time": [0.1, 0.2], "note": ["mine", "too"]}
    target.write_text(json.dumps(users, indent=1))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        trainer.export_history(target)
    assert json.loads(target.read_text()) == users


def test_a_history_another_rank_wrote_meanwhile_is_replaced_and_a_users_file_is_not(tmp_path, monkeypatch):
    """The README's example under `launch -n 2` failed on some tries: both ranks wrote history.json, and the
    slower one's write was refused as if a user's file were there (it appeared after the check). A history
    written meanwhile is replaced; a user's file that appeared meanwhile is still refused."""
    from audiotrain.train import reporting

    t = quiet_trainer(tmp_path / "run", max_epochs=1, logger=False)
    t.fit(TinyClassifier(), make_batches(32))
    target = tmp_path / "history.json"
    checked = reporting._is_history

    def other_rank_writes_first(path):  # the check sees no file; the other rank's lands before the write
        seen = checked(path)
        if not path.exists():
            path.write_text(json.dumps({"epoch": [0], "step": [2], "time": [0.1]}))
        return seen

    monkeypatch.setattr(reporting, "_is_history", other_rank_writes_first)
    assert json.loads(t.export_history(target).read_text())["epoch"] == [0]
    target.unlink()

    def user_writes_first(path):
        seen = checked(path)
        if not path.exists():
            path.write_text("a user's file")
        return seen

    monkeypatch.setattr(reporting, "_is_history", user_writes_first)
    with pytest.raises(FileExistsError):
        t.export_history(target)
    assert target.read_text() == "a user's file"


def test_an_export_every_epoch_encodes_only_the_new_epoch(tmp_path, monkeypatch):
    """Exporting the history every epoch (as a user's callback does through a long run) converted and
    encoded every value of every earlier epoch again at each call: 123 ms an export at 10,000 epochs, so a
    small model's epochs slowed from 6 to 20 ms over 1,000 and the run's exports grew with the square of its
    epochs. Counted here as the values each export converts to JSON: the same for the last epoch as for
    the second, and the file still the whole history."""
    from audiotrain import _files
    from audiotrain.train import Callback

    converted = []
    convert = _files._finite_or_null
    monkeypatch.setattr(_files, "_finite_or_null", lambda *args: converted.append(1) or convert(*args))
    target = tmp_path / "history.json"
    per_export = []

    class ExportEveryEpoch(Callback):
        def on_train_epoch_end(self, trainer, module):
            before = len(converted)
            trainer.export_history(target)
            per_export.append(len(converted) - before)
            assert json.loads(target.read_text()) == trainer.history

    trainer = quiet_trainer(tmp_path / "run", max_epochs=8, logger=False, callbacks=[ExportEveryEpoch()])
    trainer.fit(TinyClassifier(), make_batches(32))
    assert len(per_export) == 8
    assert per_export[-1] == per_export[1], per_export
    assert json.loads(trainer.export_history(tmp_path / "again.json").read_text()) == trainer.history
    assert (tmp_path / "again.json").read_bytes() == target.read_bytes()


def test_export_history_to_a_csv_path_writes_one_row_per_epoch_that_csv_readers_take(tmp_path):
    """`export_history("history.csv")` wrote the JSON export under the .csv name: `pandas.read_csv` made a
    table of brackets of it. Now a header of the columns and a row per epoch, an epoch without validation an
    empty cell (NaN to pandas); a second export replaces its own file, a CSV of yours only with overwrite."""
    import csv

    t = trainer(tmp_path, max_epochs=3, check_val_every_n_epoch=2)
    t.fit(TinyClassifier(), make_batches(), make_batches(32))
    path = t.export_history(tmp_path / "history.csv")
    with path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [int(row["epoch"]) for row in rows] == t.history["epoch"] == [0, 1, 2]
    assert [row["val_loss"] for row in rows][0] == ""  # (validated at epoch 1 only: every 2nd epoch)
    assert float(rows[1]["val_loss"]) == t.history["val_loss"][1]
    assert float(rows[2]["train_loss"]) == t.history["train_loss"][2]  # (every digit kept)
    t.export_history(path)  # (its own export: replaced, a script run again)
    mine = tmp_path / "mine.csv"
    mine.write_text("a,b\n1,2\n")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        t.export_history(mine)
    assert mine.read_text() == "a,b\n1,2\n"


def test_a_csv_history_exported_every_epoch_is_replaced_when_validation_adds_its_column(tmp_path):
    """An export to history.csv at every epoch end stopped the fit at the second with FileExistsError
    ('pass overwrite=True'): its own file of epoch 0 had no val_loss column yet (validated every 2nd epoch),
    and only a file of the same header was taken for an earlier export."""
    from audiotrain.train.callbacks import Callback

    path = tmp_path / "history.csv"

    class ExportEachEpoch(Callback):
        def on_train_epoch_end(self, trainer, module):
            trainer.export_history(path)

    t = trainer(tmp_path, max_epochs=3, check_val_every_n_epoch=2, callbacks=[ExportEachEpoch()])
    t.fit(TinyClassifier(), make_batches(), make_batches(32))
    assert t.history["epoch"] == [0, 1, 2]  # (the fit went on to its end)
    assert "val_loss" in path.read_text().split("\n", 1)[0].split(",")  # (the later exports replaced it)


def test_a_nonfinite_stop_at_an_epochs_last_batch_resumes_with_that_epochs_validation(tmp_path):
    """A stop whose streak was read at the epoch's end saved the epoch as done: the run resumed from the
    "last good state" at the next epoch, and the stopped epoch was never validated nor got a history row."""
    stopped = trainer(tmp_path, max_epochs=2, enable_checkpointing=True, max_consecutive_nonfinite=6)
    with pytest.raises(FloatingPointError, match=r"found at global step 6\b"):
        stopped.fit(NaNLoss(), make_batches(96, 16), make_batches(32, 16, seed=1))
    resumed = trainer(tmp_path / "again", max_epochs=2, enable_checkpointing=True)
    saved = tmp_path / "checkpoints" / "nonfinite"
    resumed.fit(TinyClassifier(), make_batches(96, 16), make_batches(32, 16, seed=1), ckpt_path=saved)
    assert resumed.history["epoch"] == [0, 1]
    assert len(resumed.history["val_loss"]) == 2


def test_the_skip_warning_and_the_stop_name_the_setting_that_finds_the_bad_batch(tmp_path, recwarn):
    """One batch holding a NaN sample: the warning advised Trainer(compile=False), which ran on with the same
    warning (it said that under compile=False too), and neither it nor the stop said how to find the batch;
    debug_lazy_eval=True is the setting that names it."""
    batches = make_batches(64, 16)
    x, y = batches[2]
    batches[2] = (x * mx.array(float("nan")), y)
    trainer(tmp_path, max_epochs=1, compile=False).fit(TinyClassifier(), batches)
    (skipped,) = [str(w.message) for w in recwarn if "were skipped" in str(w.message)]
    assert "Trainer(debug_lazy_eval=True) stops at the first batch whose loss is not finite" in skipped
    with pytest.raises(FloatingPointError, match="debug_lazy_eval=True"):
        trainer(tmp_path, max_epochs=1, max_consecutive_nonfinite=1).fit(TinyClassifier(), batches)
    with pytest.raises(FloatingPointError, match="at epoch 0, batch 2"):
        trainer(tmp_path, max_epochs=1, debug_lazy_eval=True).fit(TinyClassifier(), batches)


def test_ckpt_path_last_after_a_stop_before_any_last_names_the_nonfinite_checkpoint(tmp_path):
    """A run stopped in its first epoch left only checkpoints/nonfinite; ckpt_path="last" in the next process
    said "nothing saved yet; pass a checkpoint folder", as though nothing were there."""
    stopped = trainer(tmp_path, max_epochs=2, enable_checkpointing=True, max_consecutive_nonfinite=3)
    with pytest.raises(FloatingPointError):
        stopped.fit(NaNLoss(), make_batches(96, 16))
    again = trainer(tmp_path, max_epochs=2, enable_checkpointing=True)
    saved = tmp_path / "checkpoints" / "nonfinite"
    with pytest.raises(ValueError, match=f"its newest checkpoint is {saved}: pass that folder as ckpt_path"):
        again.fit(TinyClassifier(), make_batches(96, 16), ckpt_path="last")
