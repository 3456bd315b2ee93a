"""`RunState` (train/run_state.py): the checkpoint's `trainer_state.json` as one object's `state_dict()`,
which `load_state_dict()` takes back whole."""

import json

import audiotrain  # noqa: F401  (before mlx)
from audiotrain.train.run_state import RunState, run_config

import pytest
from tasks import RecordingLogger, TinyClassifier, make_batches, quiet_trainer

# The keys of `trainer_state.json` before the callbacks and the module add theirs, in the order written.
STATE_KEYS = [
    "progress",
    "running_means",
    "history",
    "random",
    "data_loader",
    "callbacks",
    "loggers",
    "logger_kinds",
    "callback_metrics",
    "validation_metrics",
    "waiting_hook_logs",
    "log_options",
    "elapsed",
    "global_batch",
    "config",
    "optimizer_settings",
    "hyper_parameters",
    "versions",
    "module_state",
    "trainable",
]


def stopped_mid_epoch(tmp_path):
    """A Trainer stopped by max_steps inside its second epoch, with a logger and a validation behind it."""
    trainer = quiet_trainer(tmp_path, max_steps=8, log_every_n_steps=3, logger=RecordingLogger())
    trainer.fit(TinyClassifier(), make_batches(96, 16), make_batches(32, 16))
    return trainer


def test_a_run_state_round_trips_through_json_into_a_new_one(tmp_path):
    trainer = stopped_mid_epoch(tmp_path)
    saved = json.loads(json.dumps(trainer._run.state_dict(trainer.running.state_dict(), {"hook": 2.5})))
    assert list(saved) == STATE_KEYS
    assert (saved["progress"]["epoch"], saved["progress"]["global_step"]) == (1, 8)
    assert [row["epoch"] for row in saved["history"]["rows"]] == [0, 1]  # (max_steps ended epoch 1 early)
    assert saved["waiting_hook_logs"] == {"hook": 2.5}
    assert saved["config"] == json.loads(json.dumps(run_config(trainer)))

    restored = RunState(trainer)
    restored.load_state_dict(saved)
    again = json.loads(json.dumps(restored.state_dict(restored.running.state_dict(), {"hook": 2.5})))
    assert again.pop("elapsed") >= saved.pop("elapsed")  # (the clock of the run it continues, going on)
    # The trainable sets come back with the module and the optimizer (`load_trainable`, on resume).
    assert again.pop("trainable") is None and saved.pop("trainable") is not None
    assert again == saved
    assert restored.progress == trainer.progress
    assert restored.callback_metrics == trainer.callback_metrics
    assert restored.history.columns() == trainer.history
    # An older checkpoint's plain value: taken as logged once in a training hook (its epoch mean so far).
    entry = trainer.module._logged["train", "", "hook"]  # (no hook name recorded then)
    assert (entry.total, entry.weight, entry.last, entry.on_epoch) == (2.5, 1.0, 2.5, True)


def test_the_trainer_reads_its_named_state_from_the_run_state(tmp_path):
    trainer = stopped_mid_epoch(tmp_path)
    assert trainer.progress is trainer._run.progress
    assert trainer.running is trainer._run.running
    assert trainer.callback_metrics is trainer._run.callback_metrics
    assert trainer.global_step == trainer._run.progress.global_step == 8
    assert "train_loss" in trainer.callback_metrics


def test_a_trainers_checkpoint_is_its_run_states_dict(tmp_path):
    trainer = stopped_mid_epoch(tmp_path)
    folder = trainer.save_checkpoint(tmp_path / "ckpt")
    written = json.loads((folder / "trainer_state.json").read_text())
    expected = json.loads(json.dumps(trainer._run.state_dict(trainer.running.state_dict(), {})))
    assert [key for key in written if key in STATE_KEYS] == STATE_KEYS
    for key in STATE_KEYS:
        if key not in ("elapsed", "random", "versions"):
            assert written[key] == expected[key], key


def test_a_resumed_trainers_run_state_is_the_checkpoints(tmp_path):
    folder = stopped_mid_epoch(tmp_path).save_checkpoint(tmp_path / "ckpt")
    written = json.loads((folder / "trainer_state.json").read_text())
    resumed = quiet_trainer(tmp_path / "again", max_steps=8, log_every_n_steps=3, logger=RecordingLogger())
    with pytest.warns(UserWarning, match="nothing to train"):
        resumed.fit(TinyClassifier(), make_batches(96, 16), make_batches(32, 16), ckpt_path=folder)
    again = json.loads(json.dumps(resumed._run.state_dict(resumed.running.state_dict(), {})))
    for key in STATE_KEYS:
        if key not in ("elapsed", "random", "versions", "loggers"):  # (the logger counts its own rows)
            assert again[key] == written[key], key
    # The time of the saved run is kept: a resumed fit's max_time counts it (a save of 0 would start afresh).
    assert written["elapsed"] > 0 and resumed._run.elapsed_before == written["elapsed"]


def test_checkpoints_leave_the_trainers_callback_metrics_as_they_were(tmp_path):
    """A save reads the run's state and changes none of it: after a fit that saved a checkpoint at each
    epoch's end, and after one resumed from it, `callback_metrics` holds the last values logged, as
    Lightning's does (a save that emptied them went unseen: the round trip compares a state with itself)."""
    trainer = quiet_trainer(tmp_path, max_epochs=2, enable_checkpointing=True)
    trainer.fit(TinyClassifier(), make_batches(96, 16), make_batches(32, 16))
    metrics = dict(trainer.callback_metrics)
    assert metrics["val_loss"] == trainer.history["val_loss"][-1] and "train_loss" in metrics
    trainer.save_checkpoint(tmp_path / "ckpt")
    assert trainer.callback_metrics == metrics
    resumed = quiet_trainer(tmp_path, max_epochs=3, enable_checkpointing=True)
    resumed.fit(TinyClassifier(), make_batches(96, 16), make_batches(32, 16), ckpt_path=tmp_path / "ckpt")
    assert resumed.callback_metrics["val_loss"] == resumed.history["val_loss"][-1]


def test_a_checkpoint_saved_after_loading_one_holds_the_loaded_random_state(tmp_path):
    """`load_checkpoint` outside `fit` puts the checkpoint's generators in place: a save after it holds
    those, not the ones the Trainer's last fit ended with."""
    from audiotrain.train.callbacks import ModelCheckpoint

    every_epoch = ModelCheckpoint(
        dirpath=tmp_path / "ck", save_top_k=-1, every_n_epochs=1, filename="{epoch}"
    )
    trainer = quiet_trainer(tmp_path, max_epochs=2, enable_checkpointing=True, callbacks=[every_epoch])
    trainer.fit(TinyClassifier(dropout=0.3), make_batches(64, 16))
    first = tmp_path / "ck" / "epoch=0"
    with pytest.warns(UserWarning, match="holds checkpoints saved after epoch=0"):  # (nothing saved here)
        trainer.load_checkpoint(first)
    again = trainer.save_checkpoint(tmp_path / "again")
    loaded = json.loads((first / "trainer_state.json").read_text())["random"]
    assert json.loads((again / "trainer_state.json").read_text())["random"] == loaded
