"""Loggers: real backends written locally and read back, resume, and failures that never stop training."""

import argparse
import csv
import dataclasses
import json
import os
import subprocess
import sys
import time
import types
import warnings
from pathlib import Path

import audiotrain  # noqa: F401
from audiotrain.train.callback import Callback
from audiotrain.train.loggers import (
    CSVLogger,
    LoggerWarning,
    MLflowLogger,
    TensorBoardLogger,
    WandbLogger,
    flatten_params,
)
from audiotrain.train.schedulers import WarmupCosineScheduler

import mlx.core as mx
import numpy as np
import pytest
import yaml
from logger_readers import (
    read_hparams_plugin,
    read_mlflow_run_in_a_fresh_process,
    read_scalars,
    wait_for_exit_record,
    wandb_artifacts,
    wandb_glob,
)
from tasks import TinyClassifier, make_batches, quiet_trainer

# ------------------------------------------------------------------ W&B (one real offline run for the module)


@pytest.fixture(scope="module")
def wandb_run(tmp_path_factory):
    save_dir = tmp_path_factory.mktemp("wandb")
    import wandb

    logger = WandbLogger(
        project="audiotrain-tests",
        name="offline-run",
        config={"model": {"width": 8}},
        save_dir=save_dir,
        offline=True,
        settings=wandb.Settings(console="off", silent=True),
    )
    logger.log_hyperparams({"lr": 1e-3, "schedule": WarmupCosineScheduler(1e-3, 10, 100)})
    for step in (0, 50, 100):
        logger.log_metrics({"train_loss": 1.0 / (step + 1), "lr": mx.array(0.5)}, step=step)
    state = logger.state_dict()
    logger.finalize("success")  # the run stays open for a later stage (test after fit) ...
    logger.finish()  # ... until finished
    return logger, state, save_dir


def wandb_config(records):
    """The run's config in W&B's offline log records: its updates, in order (the last value of each key)."""
    config = {}
    for record in records:
        kind = record.WhichOneof("record_type")
        if kind in ("run", "config"):
            updates = record.run.config.update if kind == "run" else record.config.update
            config.update({u.key: json.loads(u.value_json) for u in updates})
    return config


def test_wandb_offline_run_holds_the_metrics_and_config(wandb_run):
    logger, state, save_dir = wandb_run
    (path,) = wandb_glob(str(save_dir / "wandb" / "offline-run-*" / f"run-{state['run_id']}.wandb"))
    assert logger.failures == 0
    history = []
    records = wait_for_exit_record(path)
    for record in records:
        if record.WhichOneof("record_type") == "history":
            history.append(
                {
                    item.key or "/".join(item.nested_key): json.loads(item.value_json)
                    for item in record.history.item
                }
            )
    config = wandb_config(records)
    assert [(h["trainer/global_step"], h["train_loss"]) for h in history] == [
        (0, 1.0),
        (50, 1 / 51),
        (100, 1 / 101),
    ]
    assert all(h["lr"] == 0.5 for h in history)
    assert config["model/width"] == 8 and config["lr"] == 1e-3
    assert config["schedule/name"] == "warmup_cosine" and config["schedule/total_steps"] == 100
    assert logger.version == state["run_id"]


def test_wandb_charts_every_metric_against_the_trainers_global_step(wandb_run):
    """W&B's own `_step` restarts at 0 in a resumed offline run (class docstring): charts drawn against it
    would lay the resumed part over the first. Every metric's x axis is trainer/global_step instead."""
    logger, state, save_dir = wandb_run
    (path,) = wandb_glob(str(save_dir / "wandb" / "offline-run-*" / f"run-{state['run_id']}.wandb"))
    metrics = [r.metric for r in wait_for_exit_record(path) if r.WhichOneof("record_type") == "metric"]
    assert any(m.glob_name == "*" and m.step_metric == "trainer/global_step" for m in metrics)


@pytest.mark.parametrize("status, exit_code", [("interrupted", 130), ("failed", 1)])
def test_wandb_interrupted_or_failed_run_exits_with_the_shells_code(tmp_path, quiet_wandb, status, exit_code):
    """A Ctrl-C is exit code 130 in the run's record, as the shell's, not 1 (a failure); a failed fit is 1, which
    W&B shows as failed, not as a run that finished."""
    logger = WandbLogger(project="audiotrain-tests", save_dir=tmp_path, offline=True, settings=quiet_wandb)
    logger.log_metrics({"loss": 1.0}, step=1)
    logger.finalize(status)
    (path,) = wandb_glob(f"{logger.log_dir}/run-*.wandb")
    (exit_record,) = [r.exit for r in wait_for_exit_record(path) if r.WhichOneof("record_type") == "exit"]
    assert exit_record.exit_code == exit_code


def wandb_history(log_dir):
    """The history rows of an offline run: {key: value}, as W&B's server would chart them."""
    (path,) = wandb_glob(f"{log_dir}/run-*.wandb")
    return [
        {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
        for record in wait_for_exit_record(path)
        if record.WhichOneof("record_type") == "history"
    ]


def test_wandb_logs_images_audio_tables_and_text_as_lightnings_wandblogger(tmp_path, quiet_wandb):
    """Lightning's WandbLogger.log_image / log_audio / log_table / log_text, called from a validation hook
    (`self.logger.log_image(...)`), with numpy or MLX arrays: each lands in the run at the Trainer's step
    (the last metrics' step where none is given). They were missing: an AttributeError in the hook."""
    logger = WandbLogger(project="audiotrain-tests", save_dir=tmp_path, offline=True, settings=quiet_wandb)
    logger.log_metrics({"val_loss": 1.0}, step=4)
    wave = np.sin(np.linspace(0, 200 * np.pi, 1600)).astype(np.float32)
    logger.log_image("val/spectrogram", [np.random.rand(8, 8), mx.ones((8, 8)) * 0.5], caption=["a", "b"])
    logger.log_audio("val/audio", [wave, mx.array(wave) * 0.5], step=6, sample_rate=[16000, 16000])
    logger.log_table("val/per_class", columns=["class", "f1"], data=[["maj", 0.5], ["min", mx.array(0.25)]])
    logger.log_text("val/notes", columns=["text"], data=[["hello"]], step=6)
    with pytest.raises(TypeError, match="images must be a list"):
        logger.log_image("val/bad", np.zeros((4, 4)))
    wrong_length = r"caption needs one value per item, a list of 2 \(as many as images\); got 1 values"
    with pytest.raises(ValueError, match=wrong_length):
        logger.log_image("val/bad", [np.zeros((4, 4))] * 2, caption=["only one"])
    logger.finalize("interrupted")
    assert logger.failures == 0
    # W&B's history spells a media value's fields as nested keys: val/audio/_type, val/audio/count, ...
    media = {
        key: (row["trainer/global_step"], value)
        for row in wandb_history(logger.log_dir)
        for key, value in row.items()
        if key.startswith("val/")
    }
    assert media["val/spectrogram/_type"] == (4, "images/separated")
    assert media["val/spectrogram/count"][1] == 2
    assert media["val/audio/_type"] == (6, "audio") and media["val/audio/sampleRates"][1] == [16000, 16000]
    assert media["val/per_class/_type"] == (4, "table-file") and media["val/notes/_type"] == (6, "table-file")
    table = json.loads((logger.log_dir / "files" / media["val/per_class/path"][1]).read_text())
    assert table["columns"] == ["class", "f1"] and table["data"] == [["maj", 0.5], ["min", 0.25]]
    images = media["val/spectrogram/filenames"][1]
    assert len(images) == 2 and all((logger.log_dir / "files" / name).is_file() for name in images)
    assert len(list((logger.log_dir / "files" / "media" / "audio").rglob("*.wav"))) == 2


def test_wandb_hyperparameter_logged_again_with_a_new_value_takes_it(tmp_path, quiet_wandb):
    """As in Lightning (and as the CSV and TensorBoard loggers' hparams.yaml): a hyperparameter changed mid-run,
    or by a resume with other Trainer flags, takes its new value in the run's config. W&B refuses such a
    change unless asked (allow_val_change)."""
    logger = WandbLogger(project="audiotrain-tests", save_dir=tmp_path, offline=True, settings=quiet_wandb)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LoggerWarning)
        logger.log_hyperparams({"lr": 0.1, "batch_size": 8})
        logger.log_metrics({"loss": 1.0}, step=1)
        logger.log_hyperparams({"lr": 0.2})
        logger.finalize("interrupted")
    assert logger.failures == 0
    (path,) = wandb_glob(f"{logger.log_dir}/run-*.wandb")
    config = wandb_config(wait_for_exit_record(path))
    assert config["lr"] == 0.2 and config["batch_size"] == 8


@dataclasses.dataclass
class _Augment:
    p: float = 0.5


@dataclasses.dataclass
class _RunSettings:
    lr: float = 0.1
    augment: _Augment = dataclasses.field(default_factory=_Augment)


@pytest.mark.parametrize(
    "config", [argparse.Namespace(lr=0.1, augment={"p": 0.5}), _RunSettings()], ids=["namespace", "dataclass"]
)
def test_wandb_config_given_as_a_namespace_or_a_dataclass_reaches_the_run(tmp_path, quiet_wandb, config):
    """`WandbLogger(config=args)` with argparse's Namespace (as Lightning passes it to wandb.init, which takes
    it) or a config dataclass: the run's config holds its settings, flattened as log_hyperparams' are. It was
    a raw TypeError ('Namespace' object is not iterable) where the logger was made."""
    logger = WandbLogger(
        project="audiotrain-tests", save_dir=tmp_path, offline=True, config=config, settings=quiet_wandb
    )
    logger.log_metrics({"loss": 1.0}, step=1)
    logger.finalize("interrupted")
    (path,) = wandb_glob(f"{logger.log_dir}/run-*.wandb")
    config = wandb_config(wait_for_exit_record(path))
    assert config["lr"] == 0.1 and config["augment/p"] == 0.5


def test_wandb_config_of_another_kind_is_refused_naming_the_argument(tmp_path):
    with pytest.raises(TypeError, match=r"WandbLogger\(config=\.\.\.\): expected a dict.*got list"):
        WandbLogger(project="audiotrain-tests", save_dir=tmp_path, offline=True, config=[("lr", 0.1)])


def test_wandb_offline_setting_alone_keeps_the_run_local(tmp_path, quiet_wandb, monkeypatch):
    """``offline=True`` is what keeps the run local, without ``WANDB_MODE=offline`` (which these tests' conftest
    sets for every other test): ignored, wandb.init went online, and without a login the logger was disabled."""
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    logger = WandbLogger(project="audiotrain-tests", save_dir=tmp_path, offline=True, settings=quiet_wandb)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LoggerWarning)
        logger.log_metrics({"loss": 1.0}, step=1)
        logger.finalize("interrupted")
    assert not logger.disabled and logger.log_dir.name.startswith("offline-run-")


def test_wandb_name_and_log_dir_stay_readable_after_finalize(wandb_run):
    logger, state, save_dir = wandb_run
    (run_dir,) = wandb_glob(str(save_dir / "wandb" / "offline-run-*"))
    assert logger.name == "offline-run" and logger.log_dir == Path(run_dir)
    assert logger.version == state["run_id"]


def test_wandb_watch_of_an_mlx_model_says_what_to_use_instead(tmp_path):
    """Lightning 2.6.6's WandbLogger.watch(model) is wandb.watch on the run (torch hooks); ours had no
    `watch` at all: "AttributeError: 'WandbLogger' object has no attribute 'watch'"."""
    import mlx.nn as nn

    logger = WandbLogger(project="audiotrain-tests", save_dir=tmp_path, offline=True)
    with pytest.raises(TypeError, match=r"watches PyTorch modules only .* got Linear.*track_grad_norm=True"):
        logger.watch(nn.Linear(2, 1), log="all")
    assert logger.log_dir is None  # (refused before any run was started)


def test_wandb_artifact_calls_of_a_lightning_script_reach_wandb(tmp_path, quiet_wandb, monkeypatch):
    """Lightning 2.6.6's WandbLogger.use_artifact(name) and the static WandbLogger.download_artifact(name,
    save_dir) go to W&B; offline, W&B refuses them with "TypeError: Cannot use artifact when in offline
    mode." Ours had neither: "AttributeError: 'WandbLogger' object has no attribute 'use_artifact'"."""
    import wandb

    logger = WandbLogger(project="audiotrain-tests", save_dir=tmp_path, offline=True, settings=quiet_wandb)
    with pytest.raises(TypeError, match="Cannot use artifact when in offline mode"):
        logger.use_artifact("model-abc:best", artifact_type="model")
    with pytest.raises(TypeError, match="Cannot use artifact when in offline mode"):
        WandbLogger.download_artifact("model-abc:best", save_dir=tmp_path / "dl")
    logger.finish()
    downloaded = []

    class Found:
        def download(self, root=None):
            downloaded.append(root)
            return root

    class Api:
        def artifact(self, name, type=None):
            assert (name, type) == ("me/proj/model-abc:best", "model")
            return Found()

    monkeypatch.setattr(wandb, "Api", Api)  # (without an active run: W&B's public API, as in Lightning)
    got = WandbLogger.download_artifact("me/proj/model-abc:best", tmp_path / "dl", artifact_type="model")
    assert got == str(tmp_path / "dl") and downloaded == [str(tmp_path / "dl")]


def test_wandb_resumed_offline_run_names_every_folder_to_sync(tmp_path):
    """A resumed offline run's closing report named only the resumed part's folder for `wandb sync`: a
    user who copied the command never uploaded the part before the resume."""
    from audiotrain.train.loggers.config import describe_loggers

    import wandb

    def part(state=None):
        logger = WandbLogger(
            project="p", save_dir=tmp_path, offline=True, settings=wandb.Settings(silent=True)
        )
        if state is not None:
            logger.load_state_dict(state)
        logger.log_metrics({"loss": 1.0}, step=1 if state is None else 2)
        logger.finalize("success")
        logger.finish()
        return logger

    first = part()
    assert describe_loggers([first]) == [
        f"W&B: run {first.version} in project 'p', offline in {first.log_dir} "
        f"(wandb sync {first.log_dir} uploads it)"
    ]
    time.sleep(1.1)  # (W&B names the folders by the second they started in)
    resumed = part(first.state_dict())
    assert resumed.version == first.version and resumed.log_dir != first.log_dir
    assert resumed.offline_dirs == [first.log_dir, resumed.log_dir]
    (line,) = describe_loggers([resumed])
    assert (
        f"offline in 2 folders, one per part of the run, oldest first: {first.log_dir}, {resumed.log_dir}"
        in line
    )
    assert (
        f"(wandb sync --id {first.version} {first.log_dir} {resumed.log_dir} uploads them as one run" in line
    )


def test_wandb_resume_continues_the_same_run(monkeypatch):
    calls = []

    class FakeRun:
        id, name, dir = "abc123", "resumed", "/tmp"

        def define_metric(self, *args, **kwargs):
            pass

        def log(self, data):
            calls.append(("log", data))

    fake = types.SimpleNamespace(init=lambda **kw: calls.append(("init", kw)) or FakeRun())
    monkeypatch.setitem(sys.modules, "wandb", fake)
    logger = WandbLogger(project="p")
    logger.load_state_dict({"run_id": "abc123"})
    logger.log_metrics({"loss": 1.0}, step=7)
    assert calls[0][1]["id"] == "abc123" and calls[0][1]["resume"] == "allow"
    assert calls[1] == ("log", {"loss": 1.0, "trainer/global_step": 7})


def test_a_hook_logging_through_a_disabled_loggers_experiment_trains_on(tmp_path, monkeypatch):
    """W&B not logged in: the logger warns "training goes on, it is disabled", but a validation hook's
    `self.logger.experiment.log({...: wandb.Audio(...)})` then stopped the fit with AttributeError: 'NoneType'
    object has no attribute 'log'. A disabled logger's experiment does nothing, as on a rank > 0."""
    import wandb

    def refuse(**kwargs):
        raise wandb.errors.UsageError("No API key configured. Use `wandb login` to log in.")

    monkeypatch.setattr(wandb, "init", refuse)

    class LogsAudio(Callback):
        def on_validation_epoch_end(self, trainer, pl_module):
            clip = wandb.Audio(np.zeros(160, np.float32), sample_rate=16000)
            pl_module.logger.experiment.log({"val/audio": clip})
            self.logged = not pl_module.logger.experiment  # (false, like the None it was)

    callback = LogsAudio()
    logger = WandbLogger(project="p", save_dir=tmp_path)
    trainer = quiet_trainer(tmp_path, max_epochs=1, logger=logger, callbacks=[callback], log_every_n_steps=1)
    with pytest.warns(LoggerWarning, match="WandbLogger could not start its run"):
        trainer.fit(TinyClassifier(), make_batches(32), make_batches(16, seed=1))
    assert trainer.current_epoch == 1 and callback.logged and logger.disabled


def test_wandb_not_logged_in_warns_once_and_training_goes_on(monkeypatch):
    import wandb

    def refuse(**kwargs):
        raise wandb.errors.UsageError("api_key not configured (no-tty). call wandb.login(key=[your_api_key])")

    monkeypatch.setattr(wandb, "init", refuse)
    logger = WandbLogger(project="p")
    logger.log_hyperparams({"lr": 1})  # kept until the run starts (a resumed fit loads its id first)
    with pytest.warns(
        LoggerWarning,
        match=r"WandbLogger could not start its run \(UsageError: api_key not configured.*\): nothing is logged "
        "to it; training goes on",
    ):
        logger.start()  # what Trainer.fit does once a checkpoint is loaded
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for step in range(3):
            logger.log_metrics({"loss": 1.0}, step=step)
        logger.finalize("failed")
    assert logger.failures == 1 and not logger.experiment and logger.disabled
    from audiotrain.train.loggers.config import describe_loggers

    assert describe_loggers([logger]) == [
        "WandbLogger: disabled: it could not start its run (UsageError: api_key not configured (no-tty). call "
        "wandb.login(key=[your_api_key])); nothing was logged"
    ]  # not "W&B: run None in project 'p'", and the cause again at the end of a long run


# ------------------------------------------------------------------ TensorBoard


def test_tensorboard_flush_writes_the_points_still_queued_for_its_thread(tmp_path):
    # tensorboardX's flush flushes only what its thread has taken from the queue: a slow thread (a busy
    # machine) left the last points out of the flush the Trainer makes before it saves a checkpoint.
    import time

    logger = TensorBoardLogger(log_dir=tmp_path, name="exp")
    logger.log_metrics({"loss": 1.0}, step=1)
    events = logger._event_file._events
    write_event = events.write_event
    events.write_event = lambda event: (time.sleep(0.3), write_event(event))
    logger.log_metrics({"loss": 2.0}, step=2)
    logger.flush()
    assert read_scalars(logger.log_dir)["loss"] == [(1, 1.0), (2, 2.0)]
    logger.finalize("success")


def test_tensorboard_logs_a_nan_metric_without_tensorboardxs_bare_warning(tmp_path, caplog):
    # An accuracy over zero frames is NaN. tensorboardX warned "NaN or Inf found in input tensor." for each
    # (no metric named; it reads like a diverging run); Lightning's TensorBoardLogger logs the NaN silently.
    logger = TensorBoardLogger(log_dir=tmp_path)
    with caplog.at_level("WARNING"):
        logger.log_hyperparams({"lr": 0.1, "clip": float("inf")})
        logger.log_metrics({"val_loss": 1.0, "val_root_acc": float("nan")}, step=1)
        logger.flush()
        assert not [r for r in caplog.records if "NaN or Inf" in r.getMessage()]
        logger.experiment.add_scalar("users_own", float("inf"), 1)  # a write of the user's own still warns
        assert [r.getMessage() for r in caplog.records] == ["NaN or Inf found in input tensor."]
    logger.finalize("success")
    scalars = read_scalars(logger.log_dir)
    assert scalars["val_loss"] == [(1, 1.0)] and np.isnan(scalars["val_root_acc"][0][1])


def test_tensorboard_experiment_takes_mlx_arrays_where_it_takes_numpy(tmp_path):
    """A validation hook's `self.logger.experiment.add_audio(...)` / add_image / add_histogram / add_scalar
    with the MLX arrays the model computed (a clip, a spectrogram) raised tensorboardX's NotImplementedError
    ("Got <class 'mlx.core.array'>, but expected numpy array or torch tensor"); Lightning's users pass their
    torch tensors as they are. They are written as numpy's would be."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = TensorBoardLogger(tmp_path, name="tb")
    writer = logger.experiment
    wave = mx.sin(mx.linspace(0, 200 * np.pi, 1600))
    writer.add_audio("val/audio", wave, 3, sample_rate=16000)
    writer.add_image("val/spectrogram", mx.ones((1, 8, 12)).astype(mx.bfloat16) * 0.5, 3)
    writer.add_histogram("val/logits", mx.arange(10), global_step=3)
    writer.add_scalar("val/own", mx.array(1.5), 3)
    logger.finalize()
    events = EventAccumulator(str(logger.log_dir), size_guidance={"audio": 0, "images": 0})
    events.Reload()
    assert [(a.step, a.sample_rate, a.length_frames) for a in events.Audio("val/audio")] == [(3, 16000, 1600)]
    assert [(i.step, i.width, i.height) for i in events.Images("val/spectrogram")] == [(3, 12, 8)]
    assert events.Histograms("val/logits")[0].histogram_value.num == 10
    assert [(s.step, s.value) for s in events.Scalars("val/own")] == [(3, 1.5)]


def test_tensorboard_add_audio_takes_a_channels_first_clip_as_torchs_writer_does(tmp_path):
    """self.logger.experiment.add_audio("val/audio", clip[None], ...), the (1, frames) clip torch's
    SummaryWriter (Lightning's) takes, stopped the fit with tensorboardX's bare "AssertionError: The second
    dimension should be 1 or 2."; a (1, frames) or (2, frames) clip is written as its frames-first form."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = TensorBoardLogger(tmp_path, name="tb")
    wave = mx.sin(mx.linspace(0, 200 * np.pi, 1600))
    logger.experiment.add_audio("val/mono", wave[None], 3, sample_rate=16000)
    logger.experiment.add_audio("val/stereo", np.stack([np.array(wave)] * 2), 3, sample_rate=16000)
    logger.experiment.add_audio("val/frames_first", wave[:, None], 3, sample_rate=16000)
    logger.finalize()
    events = EventAccumulator(str(logger.log_dir), size_guidance={"audio": 0})
    events.Reload()
    for tag in ("val/mono", "val/stereo", "val/frames_first"):
        assert [(a.step, a.length_frames) for a in events.Audio(tag)] == [(3, 1600)], tag


def test_mlflow_experiment_log_image_takes_an_mlx_array(mlflow_store):
    """`self.logger.experiment.log_image(self.logger.run_id, spectrogram, key=..., step=...)` with the MLX
    array the model computed was refused by MLflow ("Unsupported image object type: <class
    'mlx.core.array'>"); it is stored as numpy's would be."""
    logger = MLflowLogger(experiment_name="media", tracking_uri=str(mlflow_store[0] / "mlflow.db"))
    logger.experiment.log_image(logger.run_id, mx.ones((8, 12, 3)) * 0.5, key="val_spectrogram", step=3)
    logger.finalize("success")
    stored = read_mlflow_run_in_a_fresh_process(logger.tracking_uri, logger.run_id)["artifacts"]
    assert any(path.startswith("images/val_spectrogram") and path.endswith(".png") for path in stored)


def test_tensorboard_event_files_read_back(tmp_path):
    logger = TensorBoardLogger(log_dir=tmp_path, name="exp")
    assert logger.version == 0
    logger.log_hyperparams({"lr": 0.1, "net": {"depth": 3}})
    for step in range(0, 30, 10):
        logger.log_metrics({"train_loss": 3.0 - step / 10, "val_accuracy": np.float32(0.5)}, step=step)
    logger.finalize("success")
    assert logger.log_dir == tmp_path / "exp" / "version_0"
    scalars = read_scalars(logger.log_dir)
    assert scalars["train_loss"] == [(0, 3.0), (10, 2.0), (20, 1.0)]
    assert scalars["val_accuracy"] == [(0, 0.5), (10, 0.5), (20, 0.5)]
    assert yaml.safe_load((logger.log_dir / "hparams.yaml").read_text()) == {"lr": 0.1, "net/depth": 3}
    assert TensorBoardLogger(log_dir=tmp_path, name="exp").version == 1
    (tmp_path / "exp" / "version_4").mkdir()  # (versions deleted in between: no earlier one is reused)
    assert TensorBoardLogger(log_dir=tmp_path, name="exp").version == 5


def test_tensorboard_resume_writes_to_the_same_version_and_drops_lost_steps(tmp_path):
    first = TensorBoardLogger(log_dir=tmp_path)
    for step in (0, 10, 20):
        first.log_metrics({"loss": float(step)}, step=step)
    state = json.loads(json.dumps(first.state_dict()))  # checkpoint at step 20
    first.log_metrics({"loss": -1.0}, step=30)  # logged after the checkpoint, then the run crashed
    first.finalize("failed")
    resumed = TensorBoardLogger(log_dir=tmp_path)
    resumed.load_state_dict(state)
    resumed.log_metrics({"loss": 30.0}, step=30)
    resumed.finalize("success")
    assert resumed.log_dir == first.log_dir
    assert read_scalars(resumed.log_dir)["loss"] == [(0, 0.0), (10, 10.0), (20, 20.0), (30, 30.0)]


def test_tensorboard_resume_from_a_checkpoint_before_anything_was_logged_drops_the_stopped_runs_points(
    tmp_path,
):
    """A checkpoint saved before the first logging step (log_every_n_steps=50, an early save or Ctrl-C)
    purged nothing: every point of the stopped run stayed, and the resumed run's came again beside them."""
    first = TensorBoardLogger(log_dir=tmp_path)
    state = json.loads(json.dumps(first.state_dict()))  # the checkpoint: nothing logged yet
    for step in (3, 6):
        first.log_metrics({"loss": float(step)}, step=step)
    first.finalize("failed")
    resumed = TensorBoardLogger(log_dir=tmp_path)
    resumed.load_state_dict(state)
    for step in (3, 6):
        resumed.log_metrics({"loss": float(step) + 0.5}, step=step)
    resumed.finalize("success")
    assert read_scalars(resumed.log_dir)["loss"] == [(3, 3.5), (6, 6.5)]


def test_tensorboard_run_resumed_twice_keeps_the_values_the_first_resume_wrote_again(tmp_path):
    """The values a resume writes again at its checkpoint's step are that step's state for the next checkpoint:
    resumed from a checkpoint of the same step saved after more came (its validation), a second resume purges
    from that step and writes again what that checkpoint holds, which must still include the training loss."""
    first = TensorBoardLogger(log_dir=tmp_path)
    first.log_metrics({"loss": 1.0}, step=3)
    state = json.loads(json.dumps(first.state_dict()))  # a batch-end checkpoint at step 3
    first.finalize("interrupted")
    resumed = TensorBoardLogger(log_dir=tmp_path)
    resumed.load_state_dict(state)
    resumed.log_metrics({"val_loss": 2.0}, step=3)  # step 3's validation, then its epoch-end checkpoint
    state = json.loads(json.dumps(resumed.state_dict()))
    resumed.finalize("interrupted")
    again = TensorBoardLogger(log_dir=tmp_path)
    again.load_state_dict(state)
    again.log_metrics({"loss": 0.5}, step=4)
    again.finalize("success")
    scalars = read_scalars(again.log_dir)
    assert scalars["loss"] == [(3, 1.0), (4, 0.5)] and scalars["val_loss"] == [(3, 2.0)]


def test_tensorboard_resume_drops_what_the_checkpoints_step_got_after_it(tmp_path):
    # A batch-end checkpoint at step 8 comes before that step's validation: the resumed run logs it again.
    first = TensorBoardLogger(log_dir=tmp_path)
    first.log_metrics({"loss": 1.0}, step=6)
    first.log_metrics({"loss": 0.5}, step=8)
    state = json.loads(json.dumps(first.state_dict()))  # the checkpoint
    first.log_metrics({"val_loss": 0.7}, step=8)
    first.log_metrics({"loss": 0.2}, step=10)
    first.finalize("failed")
    resumed = TensorBoardLogger(log_dir=tmp_path)
    resumed.load_state_dict(state)
    resumed.log_metrics({"val_loss": 0.7}, step=8)
    resumed.log_metrics({"loss": 0.25}, step=10)
    resumed.finalize("success")
    scalars = read_scalars(resumed.log_dir)
    assert scalars["loss"] == [(6, 1.0), (8, 0.5), (10, 0.25)]
    assert scalars["val_loss"] == [(8, 0.699999988079071)]  # one point, not two


@pytest.mark.parametrize("checkpoint_step", [0, 10], ids=["step-0", "no-at_step"])
def test_tensorboard_resume_keeps_the_checkpoints_step_where_it_replays_nothing(tmp_path, checkpoint_step):
    # From a checkpoint at step 0 (where the hyperparameters are too) or one saved before `at_step` was (an
    # older audiotrain's), the purge starts at the next step: the checkpoint's own points stay, once.
    first = TensorBoardLogger(log_dir=tmp_path)
    first.log_hyperparams({"lr": 0.1})
    for step in (0, 10, 20):
        first.log_metrics({"loss": float(step)}, step=step)
        if step == checkpoint_step:
            state = json.loads(json.dumps(first.state_dict()))
    if checkpoint_step:
        del state["at_step"]
    first.finalize("failed")  # crashed after step 20
    resumed = TensorBoardLogger(log_dir=tmp_path)
    resumed.load_state_dict(state)
    for step in range(checkpoint_step + 10, 30, 10):
        resumed.log_metrics({"loss": step + 0.5}, step=step)
    resumed.finalize("success")
    expected = [(s, s + (0.5 if s > checkpoint_step else 0.0)) for s in (0, 10, 20)]
    assert read_scalars(resumed.log_dir)["loss"] == expected
    assert read_hparams_plugin(resumed.log_dir)  # (written at step 0)


@pytest.mark.parametrize("cls", [CSVLogger, TensorBoardLogger])
def test_two_runs_started_at_once_in_one_root_get_a_version_folder_each(tmp_path, cls):
    """Two runs that started in one root before either wrote (a sweep's workers) both took version_0: the
    next free version was looked up, not claimed, and the second run's logs went into the first one's."""
    first, second = cls(tmp_path, name="exp"), cls(tmp_path, name="exp")
    assert first.version == second.version == 0  # read before the runs start: the next free one
    for run in (first, second):
        run.refuse_an_earlier_run()  # (as a Trainer does before it starts its loggers)
        run.start()
    assert (first.version, second.version) == (0, 1)
    assert first.log_dir != second.log_dir and second.log_dir == tmp_path / "exp" / "version_1"
    first.log_hyperparams({"run": "first"})
    second.log_hyperparams({"run": "second"})
    for run in (first, second):
        run.finalize("success")
    assert yaml.safe_load((tmp_path / "exp" / "version_0" / "hparams.yaml").read_text()) == {"run": "first"}
    assert yaml.safe_load((tmp_path / "exp" / "version_1" / "hparams.yaml").read_text()) == {"run": "second"}
    assert cls(tmp_path, name="exp").version == 2


@pytest.mark.parametrize("cls", [CSVLogger, TensorBoardLogger])
def test_a_new_run_takes_the_version_after_the_largest_as_in_lightning(tmp_path, cls):
    """Lightning's numbering: 1 + the largest version_<k>, whatever was removed below it (not the count of
    folders, which would slot the new run between older ones)."""
    for k in (1, 3):
        (tmp_path / "exp" / f"version_{k}").mkdir(parents=True)
    (tmp_path / "exp" / "version_x").mkdir()  # (not a version number)
    logger = cls(tmp_path, name="exp")
    assert logger.version == 4
    logger.log_metrics({"loss": 1.0}, step=1)
    logger.finalize("success")
    assert logger.log_dir == tmp_path / "exp" / "version_4"


def test_tensorboard_takes_lightnings_save_dir_and_name_less_folders(tmp_path):
    logger = TensorBoardLogger(save_dir=tmp_path, name="exp", version=3)
    logger.log_metrics({"loss": 1.0}, step=0)
    logger.finalize("success")
    assert logger.save_dir == tmp_path and logger.log_dir == tmp_path / "exp" / "version_3"
    assert read_scalars(logger.log_dir)["loss"] == [(0, 1.0)]
    flat = TensorBoardLogger(tmp_path / "flat", name=None)
    assert flat.log_dir == tmp_path / "flat" / "version_0"
    assert TensorBoardLogger(log_dir=tmp_path, name="").log_dir == tmp_path / "version_0"  # the earlier name
    with pytest.raises(TypeError, match="save_dir or log_dir"):
        TensorBoardLogger(save_dir=tmp_path, log_dir=tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(NotADirectoryError, match=r"TensorBoardLogger\(log_dir='.*notes\.txt'\)"):
        TensorBoardLogger(log_dir=tmp_path / "notes.txt")  # named as the user passed it


def test_tensorboard_resume_into_a_run_already_started_says_where_the_logs_go(tmp_path):
    stopped = TensorBoardLogger(tmp_path)
    stopped.log_metrics({"loss": 1.0}, step=0)
    stopped.finalize("interrupted")
    logger = TensorBoardLogger(tmp_path)
    logger.log_metrics({"loss": 1.0}, step=0)  # (starts version_1 before the checkpoint is loaded)
    with pytest.warns(LoggerWarning, match="checkpoint's run has version 0, .* already started version 1"):
        logger.load_state_dict(stopped.state_dict())
    logger.finalize("success")
    assert logger.log_dir == tmp_path / "default" / "version_1"


def test_tensorboard_events_lost_at_finalize_are_reported(tmp_path, monkeypatch):
    from tensorboardX.record_writer import RecordWriter

    def disk_full(self):
        raise OSError(28, "No space left on device")

    logger = TensorBoardLogger(tmp_path)
    logger.log_metrics({"loss": 1.0}, step=0)
    logger.flush()
    # Only finalize's flush fails (the writer's own timed flush comes after flush_secs=30).
    monkeypatch.setattr(RecordWriter, "flush", disk_full)
    logger.log_metrics({"loss": 0.5}, step=1)
    with pytest.warns(LoggerWarning, match=r"failed in finalize \(OSError: \[Errno 28\] No space left"):
        logger.finalize("success")
    assert logger.failures == 1 and logger.disabled


def test_flush_after_finalize_does_not_reopen_the_run(tmp_path):
    logger = TensorBoardLogger(tmp_path)
    logger.log_metrics({"loss": 1.0}, step=0)
    logger.finalize("success")
    event_files = sorted(logger.log_dir.glob("events.out.tfevents*"))
    logger.flush()  # (a checkpoint saved after the stage ended)
    assert not logger.started
    assert sorted(logger.log_dir.glob("events.out.tfevents*")) == event_files


def test_a_backend_failing_mid_run_warns_once(tmp_path):
    logger = TensorBoardLogger(log_dir=tmp_path)
    logger.log_metrics({"loss": 1.0}, step=0)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    logger.experiment.add_scalar = disk_full
    with pytest.warns(
        LoggerWarning, match=r"TensorBoardLogger failed in log_metrics \(OSError: .*No space left"
    ):
        logger.log_metrics({"loss": 2.0}, step=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        logger.log_metrics({"loss": 3.0}, step=2)
    assert logger.failures == 2
    logger.finalize("success")


def test_a_tensorboard_disk_filling_up_mid_fit_disables_the_logger_and_the_fit_finishes(fresh_process):
    # tensorboardX's writer thread died at the first write error; its bounded queue then filled and the next
    # add_scalar, and finalize in teardown, blocked forever (Ctrl-C did not get out). In a fresh process (its
    # last part: every TensorBoard write fails from there on), so that a hang fails the test rather than the
    # test session.
    status, said, stderr, _, _ = fresh_process
    assert status == 0, stderr[-3000:]
    assert said["disk full"] == "epochs 4 disabled True experiment False"
    assert json.loads(said["warnings of the full disk"]) == [
        "TensorBoardLogger failed in log_metrics (OSError: [Errno 28] No space left on device); training "
        "goes on, it is disabled for this run."
    ]
    assert "Exception in thread" not in stderr


# ------------------------------------------------------------------ MLflow


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory):
    """One local SQLite store for the module's MLflow tests (creating its tables takes a few seconds)."""
    folder = tmp_path_factory.mktemp("mlflow")
    return folder, f"sqlite:///{folder / 'mlflow.db'}"


# What seven tests check of a fresh Python process: its imports, its exit hooks, MLflow's first store
# creation (in a folder not made yet), its root logger, and a TensorBoard writer that fails for good.
# One process serves them all (each of them started its own, or a new store in the test process, importing
# MLX, MLflow, W&B or TensorBoard and fitting: seconds of CPU each); each part prints its own lines, each
# test reads its part's.
FRESH_PROCESS = """
import json, sys, warnings
sys.path.insert(0, {tests!r})
with warnings.catch_warnings():  # (SQLAlchemy's deprecation warns once a process, at MLflow's store import)
    warnings.simplefilter("error", DeprecationWarning)
    import audiotrain.train.loggers
    print("backends:", [m for m in ('wandb', 'mlflow', 'tensorboardX', 'tensorboard') if m in sys.modules])
    from tasks import TinyClassifier, make_batches, quiet_trainer
    from audiotrain.train.loggers import MLflowLogger

    logger = MLflowLogger(tracking_uri={store!r})  # (in a folder not made yet)
    trainer = quiet_trainer({root!r} + "/fit", max_epochs=1, logger=logger, log_every_n_steps=1)
    trainer.fit(TinyClassifier(), make_batches(32))
    print("failures:", logger.failures)
    from mlflow.tracking import MlflowClient
    run = MlflowClient(tracking_uri=logger.tracking_uri).get_run(logger.version)
    print("new store:", run.info.status, *sorted(run.data.metrics))

# MLflow runs left open: one reopened after fit, one never finalized
fitted = MLflowLogger(experiment_name="fitted", tracking_uri={store!r})
quiet_trainer({root!r} + "/reopened", max_epochs=1, logger=fitted).fit(TinyClassifier(), make_batches(32))
fitted.log_metrics({{"final_score": 0.9}})
bare = MLflowLogger(experiment_name="bare", tracking_uri={store!r})
bare.log_metrics({{"loss": 1.0}}, step=1)
print("left open:", fitted.version, bare.version)

# a W&B run left open by fit, as fit leaves it for a later stage
import wandb
from audiotrain.train import WandbLogger
left = WandbLogger(project="audiotrain-tests", save_dir={root!r} + "/wandb", offline=True,
                   settings=wandb.Settings(console="off", silent=True))
left.log_metrics({{"loss": 1.0}}, step=1)
left.finalize("success")
print("wandb run:", left.log_dir)

# (last: the user's basicConfig must follow every fit of the process)
import logging
in_trainer = MLflowLogger(save_dir={root!r} + "/trainer")
trainer = quiet_trainer({root!r} + "/trainer", max_epochs=1, logger=in_trainer, enable_checkpointing=True)
trainer.fit(TinyClassifier(), make_batches(32))
logging.basicConfig(level=logging.INFO, format="user: %(message)s")
logging.getLogger("app").info("configured after fit")
print("failures in the trainer's folder:", in_trainer.failures)

# (last of all: from the first epoch's end on, every TensorBoard write fails, as on a full disk)
from audiotrain.train.callback import Callback
from audiotrain.train.loggers import TensorBoardLogger
from tensorboardX.record_writer import RecordWriter

def disk_full(self, data):
    raise OSError(28, "No space left on device")

class FillTheDisk(Callback):
    def on_train_epoch_end(self, trainer, *args):
        RecordWriter.write = disk_full

board = TensorBoardLogger({root!r} + "/tensorboard", flush_secs=1)
trainer = quiet_trainer({root!r} + "/tensorboard", max_epochs=4, logger=board, callbacks=[FillTheDisk()],
                        log_every_n_steps=1)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    trainer.fit(TinyClassifier(), make_batches(160), make_batches(32, seed=1))
print("disk full:", "epochs", trainer.current_epoch, "disabled", board.disabled,
      "experiment", bool(board.experiment))
print("warnings of the full disk:", json.dumps([str(w.message) for w in caught]))
"""


@pytest.fixture(scope="module")
def fresh_process(tmp_path_factory):
    """FRESH_PROCESS run: its exit status, {part: the line it printed}, stderr, its folder and store."""
    root = tmp_path_factory.mktemp("fresh_process")
    store = f"sqlite:///{root / 'new' / 'sub' / 'ml.db'}"
    code = FRESH_PROCESS.format(tests=str(Path(__file__).parent), root=str(root), store=store)
    env = {**os.environ, "WANDB_DATA_DIR": str(root / "wandb-data")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    said = dict(line.partition(": ")[::2] for line in done.stdout.splitlines() if ": " in line)
    return done.returncode, said, done.stderr, root, store


def test_mlflow_local_store_and_resume(mlflow_store):
    from mlflow.tracking import MlflowClient

    folder, uri = mlflow_store
    logger = MLflowLogger(experiment_name="chords", run_name="run-1", tracking_uri=uri)
    logger.log_hyperparams({"optimizer": {"lr": 0.001, "name": "adamw"}})
    logger.log_metrics({"train_loss": 2.0, "val_loss@1": 1.5}, step=1)
    state = logger.state_dict()
    logger.finalize("interrupted")

    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(state["run_id"])
    assert run.info.status == "KILLED" and run.info.run_name == "run-1"
    assert run.data.params == {"optimizer/lr": "0.001", "optimizer/name": "adamw"}
    # The artifacts live beside the database, whatever the working folder.
    assert logger.save_dir == folder and logger.log_dir == folder / "mlruns" / state["run_id"] / "artifacts"

    resumed = MLflowLogger(experiment_name="chords", tracking_uri=uri)
    resumed.load_state_dict(state)
    resumed.log_metrics({"train_loss": 1.0}, step=2)
    assert client.get_run(state["run_id"]).info.status == "RUNNING"  # (not the stopped run's KILLED)
    resumed.finalize("success")
    assert resumed.version == state["run_id"]
    history = client.get_metric_history(state["run_id"], "train_loss")
    assert sorted((m.step, m.value) for m in history) == [(1, 2.0), (2, 1.0)]
    assert [m.value for m in client.get_metric_history(state["run_id"], "val_loss_1")] == [1.5]
    assert client.get_run(state["run_id"]).info.status == "FINISHED"


def test_mlflow_resume_with_other_trainer_flags_keeps_the_first_params_and_goes_on(tmp_path, mlflow_store):
    from audiotrain import Trainer

    from mlflow.tracking import MlflowClient
    from tasks import TinyClassifier, make_batches

    uri = mlflow_store[1]

    def trainer(**flags):
        logger = MLflowLogger(experiment_name="resume", tracking_uri=uri)
        return Trainer(
            **flags, logger=logger, enable_progress_bar=False, enable_checkpointing=False, compile=False
        )

    first = trainer(max_steps=7)
    first.fit(TinyClassifier(), make_batches(64))
    first.logger.log_hyperparams({"lr": 0.01})
    saved = first.save_checkpoint(tmp_path / "ckpt")
    resumed = trainer(max_epochs=3)
    with pytest.warns(LoggerWarning) as record:
        resumed.fit(TinyClassifier(), make_batches(64), ckpt_path=str(saved))
    (message,) = [
        str(w.message) for w in record if issubclass(w.category, LoggerWarning)
    ]  # one, naming every param
    assert "MLflow cannot change a param" in message and "keeps the old values" in message
    assert "trainer/max_steps (old '7', new 'None')" in message
    assert "trainer/max_epochs (old " in message and "new '3')" in message
    logger = resumed.logger
    assert logger.version == first.logger.version and logger.failures == 0

    params = MlflowClient(tracking_uri=uri).get_run(logger.version).data.params
    assert params["trainer/max_steps"] == "7" and params["lr"] == "0.01"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        logger.log_hyperparams({"trainer": {"max_steps": None}})  # already warned about: quiet

    def refuse(*args, **kwargs):
        raise OSError(28, "No space left on device")

    logger.experiment.log_batch = refuse  # a real failure afterwards is still reported
    with pytest.warns(LoggerWarning, match=r"MLflowLogger failed in log_metrics \(OSError"):
        logger.log_metrics({"loss": 1.0}, step=20)
    logger.finalize("success")
    assert logger.failures == 1


def test_mlflow_one_over_long_or_refused_name_loses_nothing_else(mlflow_store):
    """MLflow refuses a whole log_batch for one key over 250 characters: one long metric name lost every
    metric of each step, one long param key every param, with a warning that did not say so."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
    from mlflow.tracking import MlflowClient

    long_metric, long_param = "val/" + "m" * 300, "p" * 300
    with pytest.warns(LoggerWarning) as record:
        tags = {"t" * 300: "x" * 9000}
        logger = MLflowLogger(experiment_name="limits", tracking_uri=mlflow_store[1], tags=tags)
        logger.log_hyperparams({"lr": 0.01, long_param: 1, "model": {"width": 8}})
        logger.log_metrics({"train_loss": 2.0, long_metric: 1.0, "a//b/": 3.0}, step=1)
        logger.log_metrics({"train_loss": 1.5, long_metric: 0.5}, step=2)  # (warned once)
    messages = [str(w.message) for w in record if issubclass(w.category, LoggerWarning)]
    assert len(messages) == 3, messages
    assert f"the tag name {'t' * 300!r} is longer than MLflow's 250 characters" in messages[0]
    assert f"the param name {long_param!r} is longer than MLflow's 250 characters" in messages[1]
    assert f"the metric name {long_metric!r} is longer" in messages[2] and "stored as 'val/mmm" in messages[2]
    run = MlflowClient(tracking_uri=mlflow_store[1]).get_run(logger.version)
    assert run.data.params["lr"] == "0.01" and run.data.params["model/width"] == "8"
    (short_param,) = set(run.data.params) - {"lr", "model/width"}
    assert len(short_param) == 250 and short_param.startswith("p" * 241 + "-")
    assert run.data.metrics["train_loss"] == 1.5 and run.data.metrics["a/b"] == 3.0
    (short_metric,) = set(run.data.metrics) - {"train_loss", "a/b"}
    assert len(short_metric) == 250 and run.data.metrics[short_metric] == 0.5  # one key at both steps
    (tag,) = [k for k in run.data.tags if k.startswith("ttt")]
    assert len(tag) == 250 and len(run.data.tags[tag]) == 8000

    # An entry MLflow still refuses (a server's own rule) is left out, named; the rest of its call is logged.
    real = logger.experiment.log_batch

    def stricter(run_id, metrics=(), params=()):
        if any(m.key == "odd" for m in metrics):
            raise MlflowException("Invalid metric name: 'odd'", INVALID_PARAMETER_VALUE)
        return real(run_id, metrics=metrics, params=params)

    logger.experiment.log_batch = stricter
    with pytest.warns(LoggerWarning, match=r"MLflow refused the metric 'odd' .*the other metrics are logged"):
        logger.log_metrics({"train_loss": 1.0, "odd": 1.0}, step=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        logger.log_metrics({"train_loss": 0.5, "odd": 1.0}, step=4)  # left out, quietly
    logger.finalize("success")
    history = MlflowClient(tracking_uri=mlflow_store[1]).get_metric_history(logger.version, "train_loss")
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == [2.0, 1.5, 1.0, 0.5]
    assert logger.failures == 0


def test_a_param_a_second_fit_changes_is_warned_of_at_the_users_fit_line(mlflow_store, tmp_path):
    """A notebook reusing one MLflowLogger in a second Trainer (max_epochs 1, then 2) was told "params changed"
    from audiotrain/train/trainer.py, not from the cell's `fit` line, as the package's other warnings are."""
    from tasks import make_batches, quiet_trainer

    logger = MLflowLogger(experiment_name="refit", tracking_uri=mlflow_store[1])
    quiet_trainer(tmp_path / "a", max_epochs=1, logger=logger).fit(TinyClassifier(), make_batches(32))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_trainer(tmp_path / "b", max_epochs=2, logger=logger).fit(TinyClassifier(), make_batches(32))
    (warned,) = [w for w in caught if "params changed" in str(w.message)]
    assert "trainer/max_epochs (old '1', new '2')" in str(warned.message)
    assert warned.filename == __file__


def test_mlflow_param_logged_again_with_a_new_value_in_one_run_warns_that_it_keeps_the_old(mlflow_store):
    logger = MLflowLogger(experiment_name="params-again", tracking_uri=mlflow_store[1])
    logger.log_hyperparams({"a": 1, "b": 2})
    logger.start()
    with pytest.warns(LoggerWarning) as record:
        logger.log_hyperparams({"a": 5, "c": 3})
    (message,) = [str(w.message) for w in record if issubclass(w.category, LoggerWarning)]
    assert f"params changed in run {logger.version}: a (old '1', new '5')" in message
    assert "keeps the old values" in message
    logger.finalize("success")
    assert logger.failures == 0
    run = read_mlflow_run_in_a_fresh_process(mlflow_store[1], logger.version)
    assert run["params"] == {"a": "1", "b": "2", "c": "3"}


def test_mlflow_logs_more_params_and_metrics_than_one_of_its_calls_takes(mlflow_store):
    # MLflow takes at most 100 params or 1000 metrics a call: the rest go in further calls, none lost.
    from mlflow.tracking import MlflowClient

    logger = MLflowLogger(experiment_name="many", tracking_uri=mlflow_store[1])
    logger.log_hyperparams({f"p{i}": i for i in range(250)})
    logger.log_metrics({f"m{i}": float(i) for i in range(2001)}, step=1)
    logger.finalize("success")
    run = MlflowClient(tracking_uri=mlflow_store[1]).get_run(logger.version)
    assert run.data.params == {f"p{i}": str(i) for i in range(250)}
    assert run.data.metrics == {f"m{i}": float(i) for i in range(2001)}


def test_mlflow_logs_under_deprecations_as_errors_and_creates_its_store_quietly(fresh_process):
    """SQLAlchemy 2.1 deprecates what MLflow's store models use and warns as MLflow imports its store: under
    ``-W error::DeprecationWarning`` the logger was disabled ("could not start its run"). MLflow also printed
    two INFO lines as it created the store's tables. In a fresh process: the warning comes once a process, at
    that import."""
    status, said, stderr, _, _ = fresh_process
    assert status == 0, stderr[-3000:]
    assert said["failures"] == "0", stderr[-3000:]
    assert said["new store"].split()[0] == "FINISHED" and "train_loss" in said["new store"].split()
    assert "Creating initial MLflow database tables" not in stderr


def test_an_mlflow_run_reopened_after_fit_or_never_finalized_is_finished_when_python_exits(fresh_process):
    """A score logged after fit reopened the finished run, and a logger used without a Trainer never ended
    its run: MLflow showed both as RUNNING after the process had exited. They end, FINISHED, when Python
    exits, as runs of MLflow's own ``mlflow.start_run`` do."""
    status, said, stderr, _, uri = fresh_process
    assert status == 0, stderr[-3000:]
    fitted, bare = said["left open"].split()
    after_fit = read_mlflow_run_in_a_fresh_process(uri, fitted)
    bare_run = read_mlflow_run_in_a_fresh_process(uri, bare)
    assert after_fit["status"] == "FINISHED" and after_fit["metrics"]["final_score"] == 0.9
    assert bare_run["status"] == "FINISHED"


def test_mlflow_logger_names_its_run_and_experiment_as_lightnings_does(mlflow_store):
    from mlflow.tracking import MlflowClient

    logger = MLflowLogger(experiment_name="ids", tracking_uri=mlflow_store[1])
    assert logger.run_id is None and logger.experiment_id is None  # (no run before the first call)
    logger.log_metrics({"loss": 1.0}, step=1)
    logger.finalize("success")
    client = MlflowClient(tracking_uri=mlflow_store[1])
    assert logger.run_id == logger.version == client.search_runs([logger.experiment_id])[0].info.run_id
    assert logger.experiment_id == client.get_experiment_by_name("ids").experiment_id


def test_mlflow_run_name_wins_over_a_run_name_in_the_tags_as_in_lightning(mlflow_store):
    """Lightning's test_mlflow_run_name_setting: ``run_name`` overrides ``tags={"mlflow.runName": ...}``.
    MLflow refuses both with different values, so the run did not start and the logger disabled itself."""
    from mlflow.tracking import MlflowClient

    logger = MLflowLogger(
        experiment_name="named",
        run_name="run-name-1",
        tags={"mlflow.runName": "run-name-2", "team": "audio"},
        tracking_uri=mlflow_store[1],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", LoggerWarning)
        logger.log_metrics({"loss": 1.0}, step=1)
        logger.finalize("success")
    run = MlflowClient(tracking_uri=mlflow_store[1]).get_run(logger.run_id)
    assert run.info.run_name == "run-name-1" and run.data.tags["team"] == "audio"


def test_mlflow_run_has_the_user_and_source_tags_that_mlflows_ui_shows(mlflow_store):
    """Lightning 2.6.6's MLFlowLogger creates its run with MLflow's context tags: "mlflow.user" (the
    user's login), "mlflow.source.name" (the script, sys.argv[0]) and "mlflow.source.type" "LOCAL", as
    mlflow.start_run does. Here the run had none of them (the UI's User and Source columns were empty)."""
    import getpass

    from mlflow.tracking import MlflowClient

    logger = MLflowLogger(experiment_name="context-tags", tracking_uri=mlflow_store[1], tags={"team": "a"})
    logger.log_metrics({"loss": 1.0}, step=1)
    logger.finalize("success")
    tags = MlflowClient(tracking_uri=mlflow_store[1]).get_run(logger.run_id).data.tags
    assert tags["mlflow.user"] == getpass.getuser() and tags["mlflow.source.type"] == "LOCAL"
    assert tags["mlflow.source.name"] and tags["team"] == "a"


# A guard against MLflow's 4-minute retries only: the check is the 15 s below. The test's 60 s also paid for
# MLflowLogger's first `import mlflow` (50 s measured on a loaded 2-core machine with the test run alone).
@pytest.mark.timeout(300)
def test_mlflow_unreachable_server_disables_the_logger_within_seconds(monkeypatch):
    import socket

    for var in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    with socket.socket() as sock:  # a local port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    logger = MLflowLogger(tracking_uri=f"http://127.0.0.1:{port}")
    started = time.monotonic()
    logger.log_hyperparams({"lr": 0.1})
    with pytest.warns(LoggerWarning, match="MLflowLogger could not start its run .*it is disabled"):
        logger.log_metrics({"loss": 1.0}, step=0)
    logger.finalize("success")
    assert time.monotonic() - started < 15  # MLflow's own retries take about 4 minutes
    assert logger.failures == 1 and not logger.experiment
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ  # only bounded for the connection check


# ------------------------------------------------------------------ CSV


def read_csv(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def test_hyperparameters_logged_and_saved_outside_a_fit_are_on_disk(tmp_path):
    """Lightning's test_named_version: ``log_hyperparams(...)`` then ``save()`` writes the version folder's
    hparams.yaml (2.6.6: the folder holds it). Here save() wrote nothing until a metric was logged."""
    logger = CSVLogger(tmp_path, name="exp", version="2020-02-05-162402")
    logger.log_hyperparams({"a": 1, "b": 2})
    logger.save()
    assert yaml.safe_load((tmp_path / "exp" / "2020-02-05-162402" / "hparams.yaml").read_text()) == {
        "a": 1,
        "b": 2,
    }


def test_csv_grows_columns_and_writes_hparams(tmp_path):
    logger = CSVLogger(tmp_path, name="run")
    logger.log_hyperparams({"batch_size": 8, "schedule": WarmupCosineScheduler(1e-3, 0, 10)})
    logger.log_metrics({"train_loss": 1.5}, step=0)
    logger.log_metrics({"train_loss": 1.0, "val_loss": 0.9}, step=10)
    logger.log_metrics({"train_loss": 0.5}, step=20)
    logger.finalize("success")
    header, rows = read_csv(logger.metrics_file)
    assert header == ["step", "train_loss", "val_loss"]
    assert rows == [
        {"step": "0", "train_loss": "1.5", "val_loss": ""},
        {"step": "10", "train_loss": "1.0", "val_loss": "0.9"},
        {"step": "20", "train_loss": "0.5", "val_loss": ""},
    ]
    hparams = yaml.safe_load((logger.log_dir / "hparams.yaml").read_text())
    assert hparams["batch_size"] == 8 and hparams["schedule/peak_lr"] == 1e-3


def test_csv_writes_ints_as_ints_and_floats_as_floats_as_lightning(tmp_path):
    """Lightning 2.6.6's CSVLogger (measured): ``log_metrics({"i": 1, "f": 1.0, "ti": tensor(3), "ni":
    np.int64(5)})`` writes ``1,1.0,3,5``, and a fit's ``epoch`` column ``0``, ``1``; a value its module
    logs with ``self.log("v", 1)`` is a float, ``1.0``. Here every value was written as a float: ``1.0``,
    ``0.0``."""
    logger = CSVLogger(tmp_path, name="direct")
    logger.log_metrics({"i": 1, "f": 1.0, "ai": mx.array(3), "ni": np.int64(5), "af": mx.array(2.0)}, step=0)
    logger.save()
    assert read_csv(logger.metrics_file)[1] == [
        {"step": "0", "i": "1", "f": "1.0", "ai": "3", "ni": "5", "af": "2.0"}
    ]

    class LogsAnInt(TinyClassifier):
        def training_step(self, batch, batch_idx):
            self.log("one", 1)
            return super().training_step(batch, batch_idx)

    logger = CSVLogger(tmp_path, name="fit")
    trainer = quiet_trainer(tmp_path, max_epochs=2, logger=logger, log_every_n_steps=1)
    trainer.fit(LogsAnInt(), make_batches(32, 16))
    rows = read_csv(logger.metrics_file)[1]
    assert [r["epoch"] for r in rows if r["epoch"]] == ["0", "1"]
    assert {r["one"] for r in rows if r["one"]} == {"1.0"}


def test_csv_takes_the_folder_as_log_dir_as_the_seeds_tensorboard_logger_does(tmp_path):
    # Seed 000 writes TensorBoardLogger(log_dir="./tb_logs", name=...); swapped for a CSVLogger with the same
    # keyword, it had said "missing 1 required positional argument: 'save_dir'".
    logger = CSVLogger(log_dir=tmp_path / "csv_logs", name="experiment-1")
    logger.log_metrics({"train_loss": 1.5}, step=0)
    assert logger.metrics_file == tmp_path / "csv_logs" / "experiment-1" / "version_0" / "metrics.csv"
    with pytest.raises(TypeError, match="save_dir or log_dir"):
        CSVLogger(tmp_path, log_dir=tmp_path)
    with pytest.raises(TypeError, match="save_dir"):
        CSVLogger()


def test_csv_metrics_of_one_step_share_a_row(tmp_path):
    logger = CSVLogger(tmp_path)
    logger.log_metrics({"lr": 0.1}, step=5)
    assert read_csv(logger.metrics_file)[1] == [{"step": "5", "lr": "0.1"}]  # written at once
    logger.log_metrics({"train_loss": 1.0}, step=5)  # a new column: the file is rewritten
    logger.log_metrics({"val_loss": 0.9}, step=5)
    logger.log_metrics({"lr": 0.05}, step=10)
    logger.log_metrics({"train_loss": 0.5}, step=10)  # no new column: the last row is replaced in place
    logger.log_metrics({"train_loss": 0.4}, step=10)  # logged twice at one step: a second row, nothing lost
    logger.finalize("success")
    header, rows = read_csv(logger.metrics_file)
    assert header == ["step", "lr", "train_loss", "val_loss"]
    assert rows == [
        {"step": "5", "lr": "0.1", "train_loss": "1.0", "val_loss": "0.9"},
        {"step": "10", "lr": "0.05", "train_loss": "0.5", "val_loss": ""},
        {"step": "10", "lr": "", "train_loss": "0.4", "val_loss": ""},
    ]


def test_csv_from_a_fit_merges_the_rows_of_each_logging_step(tmp_path):
    from audiotrain import Trainer
    from audiotrain.train.callbacks import LearningRateMonitor

    from tasks import TinyClassifier, make_batches

    logger = CSVLogger(tmp_path, name=None)
    trainer = Trainer(
        max_epochs=2,
        default_root_dir=tmp_path,
        logger=logger,
        log_every_n_steps=2,
        # ("step": the default also logs an optimizer without lr_scheduler at epoch starts, as Lightning's)
        callbacks=[LearningRateMonitor(logging_interval="step")],
        enable_progress_bar=False,
        enable_checkpointing=False,
        compile=False,
    )
    trainer.fit(TinyClassifier(), make_batches(64), make_batches(16, seed=1))  # 4 steps per epoch
    assert logger.log_dir == tmp_path / "version_0"
    rows = read_csv(logger.metrics_file)[1]
    # One row per logging step: learning rate, training interval, validation and (at an epoch's last
    # step) the epoch means, whose `_epoch` names keep them apart from the interval's.
    assert [(r["step"], r["epoch"]) for r in rows] == [("2", ""), ("4", "0"), ("6", ""), ("8", "1")]
    assert all(r["lr-AdamW"] and r["train_loss"] for r in rows)
    assert [bool(r["val_loss"]) for r in rows] == [False, True, False, True]
    assert [bool(r["train_loss_epoch"]) for r in rows] == [False, True, False, True]


def test_csv_resume_appends_after_dropping_lost_rows(tmp_path):
    first = CSVLogger(tmp_path)
    first.log_metrics({"loss": 1.0}, step=1)
    state = first.state_dict()
    first.log_metrics({"loss": 99.0}, step=2)  # after the checkpoint: lost on resume
    resumed = CSVLogger(tmp_path)
    resumed.load_state_dict(state)
    with pytest.warns(
        LoggerWarning, match=r"1 row\(s\) logged after it .* kept as metrics.before-resume-1.csv"
    ):
        resumed.log_metrics({"loss": 2.0}, step=2)
    assert [(r["step"], r["loss"]) for r in read_csv(resumed.metrics_file)[1]] == [("1", "1.0"), ("2", "2.0")]
    # Nothing logged is lost: the file as it was (a test() run after the stopped fit too) is kept beside it
    kept = resumed.metrics_file.with_name("metrics.before-resume-1.csv")
    assert [(r["step"], r["loss"]) for r in read_csv(kept)[1]] == [("1", "1.0"), ("2", "99.0")]


def test_csv_resume_drops_what_the_checkpoints_row_got_after_it(tmp_path):
    # A batch-end checkpoint at step 8 comes before that step's validation: the resumed run logs it again,
    # into the step's row (it used to start a second row for step 8).
    first = CSVLogger(tmp_path)
    first.log_metrics({"loss": 1.0}, step=6)
    first.log_metrics({"loss": 0.5}, step=8)
    state = json.loads(json.dumps(first.state_dict()))  # the checkpoint
    first.log_metrics({"val_loss": 0.7}, step=8)
    first.log_metrics({"loss": 0.2}, step=10)
    resumed = CSVLogger(tmp_path)
    resumed.load_state_dict(state)
    resumed.log_metrics({"val_loss": 0.75}, step=8)
    resumed.log_metrics({"loss": 0.25}, step=10)
    rows = [(r["step"], r["loss"], r["val_loss"]) for r in read_csv(resumed.metrics_file)[1]]
    assert rows == [("6", "1.0", ""), ("8", "0.5", "0.75"), ("10", "0.25", "")]


def test_csv_resume_that_logs_the_dropped_rows_again_unchanged_neither_warns_nor_keeps_a_copy(tmp_path):
    # A batch-end checkpoint at an epoch's last step (8) comes before its validation: the resumed run logs
    # that validation and the next step again, the same values. Nothing left the file, so no warning and no
    # metrics.before-resume-1.csv (both came on every such resume). Lightning's CSVLogger appends after the
    # rows it finds, with no trim, copy or warning, so it has nothing to compare with here.
    first = CSVLogger(tmp_path)
    first.log_metrics({"loss": 0.5}, step=8)
    state = json.loads(json.dumps(first.state_dict()))  # the checkpoint
    first.log_metrics({"val_loss": 0.7}, step=8)
    first.log_metrics({"loss": 0.2}, step=10)
    resumed = CSVLogger(tmp_path)
    resumed.load_state_dict(state)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LoggerWarning)
        resumed.log_metrics({"val_loss": 0.7}, step=8)
        resumed.log_metrics({"loss": 0.2}, step=10)
        resumed.log_metrics({"loss": 0.1}, step=12)  # past what the stopped run had
        resumed.finalize()
    rows = [(r["step"], r["loss"], r["val_loss"]) for r in read_csv(resumed.metrics_file)[1]]
    assert rows == [("8", "0.5", "0.7"), ("10", "0.2", ""), ("12", "0.1", "")]
    assert not list(resumed.log_dir.glob("metrics.before-resume-*"))


@pytest.mark.parametrize("again", ["fewer rows", "another value", "more values in a row"])
def test_csv_resume_that_does_not_log_the_dropped_rows_again_unchanged_warns_and_keeps_a_copy(
    tmp_path, again
):
    first = CSVLogger(tmp_path)
    first.log_metrics({"loss": 0.5}, step=8)
    state = json.loads(json.dumps(first.state_dict()))  # the checkpoint
    first.log_metrics({"val_loss": 0.7}, step=8)
    first.log_metrics({"loss": 0.2}, step=10)
    resumed = CSVLogger(tmp_path)
    resumed.load_state_dict(state)
    with pytest.warns(
        LoggerWarning, match=r"1 row\(s\) logged after it .* kept as metrics.before-resume-1.csv"
    ):
        resumed.log_metrics({"val_loss": 0.7}, step=8)
        if again == "another value":
            resumed.log_metrics({"loss": 0.25}, step=10)
        elif again == "more values in a row":
            resumed.log_metrics({"loss": 0.2}, step=10)
            resumed.log_metrics({"val_loss": 0.1}, step=10)
        resumed.finalize()  # (a run that stops short of step 10 loses it)
    kept = resumed.metrics_file.with_name("metrics.before-resume-1.csv")
    assert [(r["step"], r["loss"], r["val_loss"]) for r in read_csv(kept)[1]] == [
        ("8", "0.5", "0.7"),
        ("10", "0.2", ""),
    ]


def test_csv_resume_from_an_epochs_last_batch_logs_the_same_rows_without_a_warning(tmp_path):
    """ModelCheckpoint(every_n_train_steps=4) at the last batch of 4-batch epochs: the resumed fit reruns
    that epoch's validation and the next epoch as the stopped run had them; it warned that rows left
    metrics.csv and kept a copy of the file on every such resume (the usual GAN setup)."""
    from audiotrain.train.callbacks import ModelCheckpoint

    from tasks import make_batches, quiet_trainer

    def fit(ckpt_path=None):
        mx.random.seed(0)
        saves = ModelCheckpoint(
            dirpath=tmp_path / "ckpts", save_top_k=-1, every_n_train_steps=4, filename="{step}"
        )
        logger = CSVLogger(save_dir=tmp_path, version=0)
        trainer = quiet_trainer(
            tmp_path, max_epochs=2, logger=logger, callbacks=[saves], enable_checkpointing=True
        )
        trainer.fit(TinyClassifier(), make_batches(64), make_batches(16, seed=1), ckpt_path=ckpt_path)
        return logger

    straight = fit().metrics_file.read_text()
    with warnings.catch_warnings():
        warnings.simplefilter("error", LoggerWarning)
        logger = fit(ckpt_path=tmp_path / "ckpts" / "step=4")
    assert logger.metrics_file.read_text() == straight
    assert not list(logger.log_dir.glob("metrics.before-resume-*"))


def test_csv_resume_after_rows_merged_in_place_keeps_only_the_checkpoints_rows(tmp_path):
    # Values joining a step's row without a new column rewrite that row in place: still one row, so the
    # checkpoint's row count (what a resume keeps) must not grow (it did: step 3 was kept, then logged again).
    first = CSVLogger(tmp_path)
    first.log_metrics({"loss": 1.0}, step=1)
    first.log_metrics({"val_loss": 0.9}, step=1)  # a new column: the file is rewritten
    first.log_metrics({"loss": 0.5}, step=2)
    first.log_metrics({"val_loss": 0.6}, step=2)  # joins step 2's row in place
    state = json.loads(json.dumps(first.state_dict()))  # the checkpoint
    first.log_metrics({"loss": 99.0}, step=3)  # after the checkpoint: lost on resume
    resumed = CSVLogger(tmp_path)
    resumed.load_state_dict(state)
    with pytest.warns(LoggerWarning, match=r"1 row\(s\) logged after it"):
        resumed.log_metrics({"loss": 0.25}, step=3)
    rows = [(r["step"], r["loss"], r["val_loss"]) for r in read_csv(resumed.metrics_file)[1]]
    assert rows == [("1", "1.0", "0.9"), ("2", "0.5", "0.6"), ("3", "0.25", "")]


def test_csv_resume_from_a_checkpoint_without_its_row_count_keeps_the_checkpoints_step(tmp_path):
    # An older checkpoint saved the step alone: the resume keeps the rows up to that step, its own too.
    first = CSVLogger(tmp_path)
    for step in (1, 2, 3):
        first.log_metrics({"loss": float(step)}, step=step)
    state = {"version": first.version, "step": 2}
    resumed = CSVLogger(tmp_path)
    resumed.load_state_dict(state)
    with pytest.warns(LoggerWarning, match=r"1 row\(s\) logged after it"):
        resumed.log_metrics({"loss": 3.5}, step=3)
    rows = [(r["step"], r["loss"]) for r in read_csv(resumed.metrics_file)[1]]
    assert rows == [("1", "1.0"), ("2", "2.0"), ("3", "3.5")]


def test_csv_rows_merged_in_place_keep_one_line_ending(tmp_path):
    # The csv module reads a bare "\r" as a line end too, so only the bytes show a merge that cut the
    # previous row's "\r\n" short: `wc -l`, grep and line-oriented readers see two rows as one line.
    logger = CSVLogger(tmp_path)
    logger.log_metrics({"loss": 1.0}, step=1)
    logger.log_metrics({"val_loss": 0.9}, step=2)  # a new column: the file is rewritten ...
    logger.log_metrics({"loss": 0.5}, step=2)  # ... and its last row replaced in place
    logger.log_metrics({"loss": 0.4}, step=3)
    logger.log_metrics({"val_loss": 0.3}, step=3)
    data = logger.metrics_file.read_bytes()
    assert data.split(b"\r\n") == [b"step,loss,val_loss", b"1,1.0,", b"2,0.5,0.9", b"3,0.4,0.3", b""]


def test_unwritable_folder_warns_once_and_disables(tmp_path):
    blocker = tmp_path / "a_file"
    logger = CSVLogger(blocker)
    blocker.write_text("")  # (after: a file given as the folder is refused at once)
    with pytest.warns(LoggerWarning, match="CSVLogger could not start its run .*it is disabled"):
        logger.log_metrics({"loss": 1.0}, step=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        logger.log_metrics({"loss": 1.0}, step=1)
        logger.finalize("failed")


def test_a_required_logger_that_cannot_start_stops_fit_before_the_first_step(tmp_path):
    """`required`: a run whose logs are the point does not train unlogged after a warning; the error names
    the logger and why, and comes before any step. A later stage's reopening still only warns."""
    from audiotrain.train.loggers import LoggerNotStarted

    from tasks import TinyClassifier, make_batches, quiet_trainer

    blocker = tmp_path / "a_file"
    logger = CSVLogger(blocker)
    blocker.write_text("")  # (after: a file given as the folder is refused at once)
    logger.required = True
    trainer = quiet_trainer(tmp_path, max_epochs=1, logger=logger)
    with pytest.raises(LoggerNotStarted, match=r"CSVLogger could not start its run \(.*it is required"):
        trainer.fit(TinyClassifier(), make_batches())
    assert trainer.global_step == 0 and logger.disabled


class StartsOnce(CSVLogger):
    """A CSVLogger whose backend is gone after its first start (a tracking server shut down after fit)."""

    starts = 0

    def _start(self):
        self.starts += 1
        if self.starts > 1:
            raise ConnectionError("server gone")
        super()._start()


def test_a_required_logger_that_cannot_reopen_its_run_for_a_later_stage_only_warns(tmp_path):
    from tasks import make_batches, quiet_trainer

    logger = StartsOnce(tmp_path, name="csv")
    logger.required = True
    trainer = quiet_trainer(tmp_path, max_epochs=1, logger=logger)
    module = TinyClassifier()
    trainer.fit(module, make_batches(32))
    with pytest.warns(
        LoggerWarning, match=r"StartsOnce could not start its run \(ConnectionError: server gone"
    ):
        trainer.test(module, make_batches(32, seed=1))
    assert logger.starts == 2 and logger.disabled


# ------------------------------------------------------------------ the interface


def read_text_summaries(log_dir, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return [e.tensor_proto.string_val[0].decode() for e in acc.Tensors(tag)]


def test_hparams_logged_before_and_after_fit_are_merged_with_the_trainers(tmp_path):
    from audiotrain import Trainer

    from tasks import TinyClassifier, make_batches

    csv_logger, tb_logger = CSVLogger(tmp_path, name="csv"), TensorBoardLogger(tmp_path, name="tb")
    loggers = [csv_logger, tb_logger]
    for logger in loggers:
        logger.log_hyperparams({"lr": 0.1, "model": {"hidden": 8}})
    trainer = Trainer(
        max_steps=2, logger=loggers, enable_progress_bar=False, enable_checkpointing=False, compile=False
    )
    trainer.fit(TinyClassifier(), make_batches(32))
    for logger in loggers:
        logger.log_hyperparams({"lr": 0.2, "note": "after fit"})  # a name logged again takes its new value
        logger.finalize("success")
        hparams = yaml.safe_load((logger.log_dir / "hparams.yaml").read_text())
        assert hparams["lr"] == 0.2 and hparams["model/hidden"] == 8 and hparams["note"] == "after fit"
        assert hparams["trainer/max_steps"] == 2 and hparams["module"] == "TinyClassifier"
    # TensorBoard's text record shows its latest summary: it holds the merged set too.
    table = read_text_summaries(tb_logger.log_dir, "hparams/text_summary")[-1]
    assert (
        "| model/hidden | 8 |" in table and "| trainer/max_steps | 2 |" in table and "| lr | 0.2 |" in table
    )


class ChangesTheLearningRate(Callback):
    def on_train_epoch_end(self, trainer, module):
        for logger in trainer.loggers:
            logger.log_hyperparams({"lr": 0.5})


def test_a_hyperparameter_changed_mid_fit_keeps_its_new_value_through_test(tmp_path):
    """The hyperparameters logged before the run started are written as it starts; a later stage's reopening
    of the run (trainer.test) must not write them again over a value the user changed since."""
    from tasks import make_batches, quiet_trainer

    loggers = [CSVLogger(tmp_path, name="csv"), TensorBoardLogger(tmp_path, name="tb")]
    for logger in loggers:
        logger.log_hyperparams({"lr": 0.1, "seed": 1})
    trainer = quiet_trainer(tmp_path, max_epochs=1, logger=loggers, callbacks=[ChangesTheLearningRate()])
    module = TinyClassifier()
    trainer.fit(module, make_batches(32))
    trainer.test(module, make_batches(32, seed=1))
    for logger in loggers:
        hparams = yaml.safe_load((logger.log_dir / "hparams.yaml").read_text())
        assert hparams["lr"] == 0.5 and hparams["seed"] == 1, type(logger).__name__


def test_a_resumed_folder_logger_keeps_the_hparams_of_the_interrupted_run(tmp_path):
    for cls in (CSVLogger, TensorBoardLogger):
        first = cls(tmp_path, name=cls.__name__)
        first.log_hyperparams({"lr": 0.1, "seed": 1})
        first.log_metrics({"loss": 1.0}, step=1)
        state = first.state_dict()
        first.finalize("interrupted")
        resumed = cls(tmp_path, name=cls.__name__)
        resumed.load_state_dict(state)
        resumed.log_hyperparams({"seed": 2})
        resumed.finalize("success")
        assert yaml.safe_load((resumed.log_dir / "hparams.yaml").read_text()) == {"lr": 0.1, "seed": 2}


@pytest.mark.parametrize(
    "make", [lambda tmp: MLflowLogger(tracking_uri=(tmp / "ml").as_uri()), TensorBoardLogger]
)
def test_metric_names_that_the_backend_merges_warn_once(tmp_path, make):
    logger = make(tmp_path)
    logger.log_metrics({"top_1": 0.1}, step=0)
    with pytest.warns(LoggerWarning, match=r"metric names 'top_1' and 'top@1' both become 'top_1'"):
        logger.log_metrics({"top@1": 0.5}, step=0)
    with pytest.warns(LoggerWarning, match=r"metric names 'top_1' and 'top#1' both become 'top_1'"):
        logger.log_metrics({"top#1": 0.7, "top@1": 0.5}, step=1)
    with pytest.warns(LoggerWarning, match=r"metric names 'loss' and '/loss' both become 'loss'"):
        logger.log_metrics({"loss": 1.0, "/loss": 2.0}, step=1)  # (both drop a leading '/')
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        logger.log_metrics({"top_1": 0.2, "top@1": 0.6, "top#1": 0.8, "top5": 0.9}, step=2)
        logger.finalize("success")
    assert logger.failures == 0


def test_an_image_given_to_log_metrics_is_refused_naming_the_loggers_media_calls(tmp_path, quiet_wandb):
    """A hook's `logger.log_metrics({"samples": [wandb.Image(...)]})` or a confusion-matrix figure given to
    log_metrics was refused with "must be a number or a scalar array" alone: each logger's refusal now names
    its own way to log media."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import wandb

    figure = plt.figure()
    wb = WandbLogger(project="audiotrain-tests", save_dir=tmp_path, offline=True, settings=quiet_wandb)
    refusals = {
        wb: ("samples", [wandb.Image(np.zeros((4, 4)))], r"logger.log_image\(key, \[images\]\)"),
        TensorBoardLogger(tmp_path / "tb"): ("cm", figure, r"experiment.add_figure\(tag, figure, step\)"),
        MLflowLogger(tracking_uri=str(tmp_path / "m.db")): ("cm", figure, r"log_figure\(logger.run_id, "),
        CSVLogger(tmp_path / "csv"): ("cm", figure, "metrics.csv holds numbers only"),
    }
    for logger, (name, value, way) in refusals.items():
        refused = rf"metric '{name}' must be a number or a scalar array, got .*; .*{way}"
        with pytest.raises(TypeError, match=refused):
            logger.log_metrics({name: value}, step=1)
    wb.finalize("interrupted")
    plt.close(figure)


def test_csv_loggers_experiment_is_lightnings_writer_and_refuses_media_saying_why(tmp_path):
    """`self.logger.experiment` of a CSVLogger was None: a hook's add_image failed with "'NoneType' object has
    no attribute 'add_image'", and Lightning's ExperimentWriter calls (log_hparams, log_metrics, save) too."""

    class LogsByHand(Callback):
        def on_validation_epoch_end(self, trainer, pl_module):
            pl_module.logger.experiment.log_hparams({"n_mels": 64})
            pl_module.logger.experiment.log_metrics({"by_hand": 0.5}, trainer.global_step)
            pl_module.logger.experiment.save()
            pl_module.logger.experiment.add_image("val/spectrogram", np.zeros((1, 8, 8)), trainer.global_step)

    logger = CSVLogger(tmp_path, name="csv")
    trainer = quiet_trainer(
        tmp_path, max_epochs=1, logger=logger, callbacks=[LogsByHand()], log_every_n_steps=1
    )
    refused = r"CSVLogger.experiment has no 'add_image': metrics.csv holds numbers only: .* TensorBoard"
    with pytest.raises(AttributeError, match=refused):
        trainer.fit(TinyClassifier(), make_batches(32), make_batches(16, seed=1))
    rows = list(csv.DictReader(open(logger.log_dir / "metrics.csv")))
    assert [(r["step"], r["by_hand"]) for r in rows if r["by_hand"]] == [("2", "0.5")]
    assert "n_mels: 64" in (logger.log_dir / "hparams.yaml").read_text()


def test_csv_loggers_experiment_names_its_metrics_file_as_lightnings_writer_does(tmp_path):
    """Lightning's ExperimentWriter has ``metrics_file_path`` (a str; its test_append_columns reads the file
    by it), which this one refused as a media call."""
    logger = CSVLogger(tmp_path)
    logger.log_metrics({"a": 1, "b": 2})
    logger.log_metrics({"a": 1, "b": 2, "c": 3})
    path = logger.experiment.metrics_file_path
    assert isinstance(path, str) and path == str(logger.log_dir / "metrics.csv")
    with open(path) as file:
        assert set(file.readline().strip().split(",")) == {"step", "a", "b", "c"}


def test_bad_arguments_are_explained(tmp_path):
    logger = CSVLogger(tmp_path)
    with pytest.raises(TypeError, match="metric 'loss' must be a number or a scalar array"):
        logger.log_metrics({"loss": "high"}, step=0)
    with pytest.raises(ValueError, match="step must be an int >= 0, got -1"):
        logger.log_metrics({"loss": 1.0}, step=-1)
    with pytest.raises(ValueError, match="finalize status must be one of"):
        logger.finalize("done")


def test_flatten_params_expands_nested_dicts_dataclasses_and_schedules():
    @dataclasses.dataclass
    class Optimizer:  # a user's config section: a dataclass without to_dict()
        lr: float = 0.1
        betas: tuple = (0.9, 0.99)

    flat = flatten_params(
        {
            "a": {"b": 1, "c": {"d": np.float32(2.0)}},
            "s": WarmupCosineScheduler(1.0, 1, 2),
            "opt": Optimizer(),
            "flag": True,
        }
    )
    assert flat["a/b"] == 1 and flat["a/c/d"] == 2.0 and isinstance(flat["a/c/d"], float)
    assert flat["s/name"] == "warmup_cosine" and flat["s/warmup_steps"] == 1
    assert flat["opt/lr"] == 0.1 and flat["opt/betas"] == [0.9, 0.99] and "opt" not in flat
    assert flat["flag"] is True  # (a bool is an int too: every backend would show 1)
    # A parent key joins as the nested ones do: prefix="hp" gave "hpa/b".
    assert flatten_params({"a": {"b": 1}, "c": 2}, prefix="hp") == {"hp/a/b": 1, "hp/c": 2}


def test_nested_namespaces_in_hyperparameters_are_expanded_as_lightning_does(tmp_path):
    """A namespace inside the hyperparameters (jsonargparse's nested configs) is expanded as a dict, as
    Lightning's `_flatten_dict` does for TensorBoard's HParams tab (``namespace/foo/bar``); it was one str,
    "Namespace(foo=Namespace(bar='buzz'))"."""
    params = {"namespace": argparse.Namespace(foo=argparse.Namespace(bar="buzz")), "lr": 0.1}
    assert flatten_params(params) == {"namespace/foo/bar": "buzz", "lr": 0.1}
    logger = TensorBoardLogger(tmp_path)
    logger.log_hyperparams(params)
    logger.finalize("success")
    assert yaml.safe_load(logger.hparams_file.read_text()) == {"namespace/foo/bar": "buzz", "lr": 0.1}


def test_numpy_hyperparameters_are_stored_as_lightnings_sanitized_values(tmp_path):
    """Lightning's `_sanitize_params` (its test_np_sanitization) stores numpy scalars as plain numbers and a
    complex one as its str; a numpy complex here failed the CSV logger's hparams.yaml (RepresenterError)."""
    logger = CSVLogger(tmp_path)
    params = {"flag": np.bool_(1), "n": np.intc(3), "x": np.single(6.0), "c": np.csingle(7 + 2j)}
    with warnings.catch_warnings():
        warnings.simplefilter("error", LoggerWarning)
        logger.log_hyperparams(argparse.Namespace(**params))
        logger.log_metrics({"loss": 1.0}, step=0)
        logger.finalize("success")
    saved = yaml.safe_load((logger.log_dir / "hparams.yaml").read_text())
    assert saved == {"flag": True, "n": 3, "x": 6.0, "c": "(7+2j)"}


@pytest.mark.parametrize(
    "cls, modules, pip_name",
    [
        (WandbLogger, ["wandb"], "wandb"),
        (MLflowLogger, ["mlflow"], "mlflow-skinny"),
        (TensorBoardLogger, ["tensorboardX", "torch.utils.tensorboard"], "tensorboardX"),
    ],
)
def test_missing_package_names_what_to_install(monkeypatch, cls, modules, pip_name):
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=f"needs the '{pip_name}' package.*pip install {pip_name}"):
        cls()


def test_importing_the_loggers_does_not_import_backends(fresh_process):
    status, said, stderr, _, _ = fresh_process
    assert status == 0, stderr[-3000:]
    assert said["backends"] == "[]"


# ------------------------------------------------------------------ MLflow as MLflow users work


def test_mlflow_default_store_is_one_that_mlflows_own_client_reads_without_extra_variables(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "plot.png").write_bytes(b"\x89PNG not really")
    logger = MLflowLogger(experiment_name="defaults", run_name="first")
    assert logger.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"  # MLflow's own default, made absolute
    logger.log_hyperparams({"lr": 0.01})
    logger.log_metrics({"train_loss": 0.5}, step=3)
    logger.log_artifact(tmp_path / "plot.png", "plots/plot.png")
    logger.finalize("success")
    run = read_mlflow_run_in_a_fresh_process(logger.tracking_uri, logger.version)
    assert run["status"] == "FINISHED" and run["name"] == "first"
    assert run["params"] == {"lr": "0.01"} and run["metrics"] == {"train_loss": 0.5}
    assert run["artifacts"] == ["plots/plot.png"]
    assert (logger.log_dir / "plots" / "plot.png").read_bytes() == b"\x89PNG not really"


def test_mlflow_tracking_uris_resolve_as_mlflow_users_write_them(tmp_path, monkeypatch):
    from audiotrain.train.loggers import resolve_tracking_uri

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri(None) == f"sqlite:///{tmp_path}/mlflow.db"
    assert resolve_tracking_uri("runs/store.db") == f"sqlite:///{tmp_path}/runs/store.db"
    for suffix in (".sqlite", ".sqlite3"):  # SQLite's other usual names are databases too, not folders
        assert resolve_tracking_uri(f"runs/store{suffix}") == f"sqlite:///{tmp_path}/runs/store{suffix}"
    assert resolve_tracking_uri("runs") == f"sqlite:///{tmp_path}/runs/mlflow.db"  # a folder holds mlflow.db
    assert resolve_tracking_uri("sqlite:///rel.db") == f"sqlite:///{tmp_path}/rel.db"
    assert resolve_tracking_uri("sqlite:////abs/x.db") == "sqlite:////abs/x.db"
    assert resolve_tracking_uri("file:./mlruns") == (tmp_path / "mlruns").as_uri()
    for remote in ("http://mlflow.example.com:5000", "https://mlflow.example.com", "databricks"):
        assert resolve_tracking_uri(remote) == remote
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.internal:5000")
    assert resolve_tracking_uri(None) == "http://tracking.internal:5000"


def test_mlflow_remote_server_gets_the_run_and_its_artifacts(tmp_path, monkeypatch):
    import mlflow.tracking

    calls = []

    class FakeClient:
        """Stands in for MLflow's client on a server: records what the logger asks of it (no network)."""

        def __init__(self, tracking_uri):
            calls.append(("client", tracking_uri))

        def get_experiment_by_name(self, name):
            return None

        def create_experiment(self, name, artifact_location=None):
            calls.append(("create_experiment", name, artifact_location))
            return "7"

        def create_run(self, experiment_id, run_name=None, tags=None):
            info = types.SimpleNamespace(run_id="r1", artifact_uri="mlflow-artifacts:/7/r1/artifacts")
            return types.SimpleNamespace(info=info)

        def log_batch(self, run_id, metrics=(), params=()):
            calls.append(("log_batch", run_id, [(m.key, m.value, m.step) for m in metrics]))

        def log_artifact(self, run_id, local_path, artifact_path=None):
            calls.append(("log_artifact", run_id, Path(local_path).name, artifact_path))

        def set_terminated(self, run_id, status):
            calls.append(("set_terminated", run_id, status))

    monkeypatch.setattr(mlflow.tracking, "MlflowClient", FakeClient)
    (tmp_path / "a.txt").write_text("x")
    logger = MLflowLogger(experiment_name="exp", tracking_uri="https://mlflow.example.com")
    logger.log_metrics({"loss": 1.0}, step=2)
    logger.log_artifact(tmp_path / "a.txt")
    logger.finalize("success")
    assert calls == [
        ("client", "https://mlflow.example.com"),
        ("create_experiment", "exp", None),  # the server decides where artifacts go
        ("log_batch", "r1", [("loss", 1.0, 2)]),
        ("log_artifact", "r1", "a.txt", None),
        ("set_terminated", "r1", "FINISHED"),
    ]
    assert logger.save_dir is None and logger.log_dir is None and logger.failures == 0


def test_mlflow_local_store_without_its_database_packages_says_what_to_install(monkeypatch):
    from audiotrain.train.loggers import mlflow_logger

    real = mlflow_logger.importlib.util.find_spec
    monkeypatch.setattr(
        mlflow_logger.importlib.util, "find_spec", lambda name: None if name == "alembic" else real(name)
    )
    with pytest.raises(ImportError, match=r"needs alembic.*pip install 'audiotrain\[loggers\]'"):
        MLflowLogger(tracking_uri="sqlite:////tmp/x.db")
    MLflowLogger(tracking_uri="http://mlflow.example.com")  # a server needs no database here


# ------------------------------------------------------------------ one run across fit and test


def test_fit_then_test_stays_one_run_in_every_logger(tmp_path, mlflow_store, monkeypatch):
    from audiotrain import Trainer

    import wandb
    from mlflow.tracking import MlflowClient
    from tasks import TinyClassifier, make_batches

    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb-data"))
    quiet = wandb.Settings(console="off", silent=True)
    w = WandbLogger(project="audiotrain-tests", save_dir=tmp_path, offline=True, settings=quiet)
    m = MLflowLogger(experiment_name="fit-and-test", tracking_uri=mlflow_store[1])
    tb, c = TensorBoardLogger(tmp_path, name="tb"), CSVLogger(tmp_path, name="csv")
    trainer = Trainer(
        max_steps=4,
        logger=[w, m, tb, c],
        log_every_n_steps=2,
        enable_progress_bar=False,
        enable_checkpointing=False,
        compile=False,
    )
    module = TinyClassifier()
    trainer.fit(module, make_batches(64))
    trainer.test(module, make_batches(32, seed=2))
    w.finish()

    (folder,) = wandb_glob(str(tmp_path / "wandb" / "offline-run-*"))  # one folder, not one per stage
    keys = set()
    for record in wait_for_exit_record(wandb_glob(f"{folder}/run-*.wandb")[0]):
        if record.WhichOneof("record_type") == "history":
            keys.update(item.key or "/".join(item.nested_key) for item in record.history.item)
    assert {"train_loss", "test_loss"} <= keys

    client = MlflowClient(tracking_uri=mlflow_store[1])
    (run,) = client.search_runs([client.get_experiment_by_name("fit-and-test").experiment_id])
    assert {"train_loss", "test_loss"} <= run.data.metrics.keys() and run.info.status == "FINISHED"

    assert [p.name for p in (tmp_path / "tb").iterdir()] == ["version_0"]
    assert {"train_loss", "test_loss"} <= read_scalars(tb.log_dir).keys()
    assert [p.name for p in (tmp_path / "csv").iterdir()] == ["version_0"]
    assert {"train_loss", "test_loss"} <= set(read_csv(c.metrics_file)[0])


def test_a_pickled_or_copied_logger_goes_on_in_the_same_run(tmp_path, mlflow_store):
    """Lightning's loggers pickle (test_loggers_pickle_all: a Trainer sent to another process, a deepcopy),
    dropping their experiment, and the copy logs to the same run. Here TensorBoard's, MLflow's (and W&B's)
    raised TypeError / PicklingError on their module or writer, and a CSVLogger that had run a fit on its
    weak reference to the Trainer."""
    import copy
    import pickle

    from mlflow.tracking import MlflowClient

    tb, c = TensorBoardLogger(tmp_path, name="tb"), CSVLogger(tmp_path, name="csv")
    m = MLflowLogger(experiment_name="pickled", tracking_uri=mlflow_store[1])
    trainer = quiet_trainer(tmp_path, max_steps=2, logger=[tb, c, m], log_every_n_steps=1, compile=False)
    trainer.fit(TinyClassifier(), make_batches(32))
    for logger in (tb, c, m):
        copied = pickle.loads(pickle.dumps(logger))
        assert copied.version == logger.version and copied.save_dir == logger.save_dir
        copied.log_metrics({"after": 1.0}, step=5)
        copied.finalize("success")
        assert copy.deepcopy(logger).version == logger.version
    assert read_scalars(tb.log_dir)["after"] == [(5, 1.0)]
    assert [p.name for p in (tmp_path / "tb").iterdir()] == ["version_0"]
    assert read_csv(c.metrics_file)[1][-1]["after"] == "1.0"
    client = MlflowClient(tracking_uri=mlflow_store[1])
    assert client.get_run(m.run_id).data.metrics["after"] == 1.0


def test_test_after_a_resumed_fit_keeps_the_fits_steps(tmp_path):
    """Resuming drops the steps after the checkpoint once: a later stage reopening the logger keeps them."""
    for cls in (CSVLogger, TensorBoardLogger):
        first = cls(tmp_path, name=cls.__name__)
        first.log_metrics({"loss": 1.0}, step=1)
        state = first.state_dict()
        first.finalize("interrupted")
        resumed = cls(tmp_path, name=cls.__name__)
        resumed.load_state_dict(state)
        resumed.log_metrics({"loss": 0.5}, step=2)  # the resumed fit
        resumed.finalize("success")
        resumed.log_metrics({"test_loss": 0.7}, step=2)  # test() afterwards
        resumed.finalize("success")
        if cls is CSVLogger:
            rows = read_csv(resumed.metrics_file)[1]
            assert [(r["step"], r["loss"], r["test_loss"]) for r in rows] == [
                ("1", "1.0", ""),
                ("2", "0.5", ""),
                ("2", "", "0.7"),  # another stage: its own row
            ]
        else:
            assert read_scalars(resumed.log_dir)["loss"] == [(1, 1.0), (2, 0.5)]


# ------------------------------------------------------------------ one series per quantity


def test_the_learning_rate_is_one_series_named_as_a_lightning_user_chose(tmp_path):
    from audiotrain.train.callbacks import LearningRateMonitor

    from tasks import RecordingLogger, TinyClassifier, make_batches, quiet_trainer

    plain, monitored = RecordingLogger(), RecordingLogger()
    quiet_trainer(tmp_path, max_steps=4, log_every_n_steps=2, logger=plain).fit(
        TinyClassifier(), make_batches()
    )
    trainer = quiet_trainer(
        tmp_path, max_steps=4, log_every_n_steps=2, logger=monitored, callbacks=[LearningRateMonitor()]
    )
    trainer.fit(TinyClassifier(), make_batches())
    assert "learning_rate" in plain.keys() and not any(k.startswith("lr-") for k in plain.keys())
    assert "lr-AdamW" in monitored.keys() and "learning_rate" not in monitored.keys()
    # (0: the epoch's start: Lightning 2.6.6 logs an optimizer without lr_scheduler there and at the steps)
    assert [s for s, m in monitored.metrics if "lr-AdamW" in m] == [0, 2, 4]
    assert trainer.history["learning_rate"]  # the history keeps its column either way


def test_under_gradient_accumulation_the_learning_rate_is_logged_once_a_logging_step(tmp_path):
    from audiotrain.train.callbacks import LearningRateMonitor

    from tasks import RecordingLogger, TinyClassifier, make_batches, quiet_trainer

    logger = RecordingLogger()
    trainer = quiet_trainer(
        tmp_path,
        max_epochs=1,
        accumulate_grad_batches=2,
        log_every_n_steps=1,
        logger=logger,
        callbacks=[LearningRateMonitor()],
    )
    trainer.fit(TinyClassifier(), make_batches())  # 6 batches: 3 steps
    # Not at the micro-batches; 0: the epoch's start, where Lightning 2.6.6 logs an optimizer without
    # lr_scheduler too.
    assert [s for s, m in logger.metrics if "lr-AdamW" in m] == [0, 1, 2, 3]


def test_skipped_steps_is_logged_once_an_update_was_skipped(tmp_path):
    from tasks import RecordingLogger, TinyClassifier, make_batches, quiet_trainer

    class NaNAtBatch3(TinyClassifier):
        def compute_loss(self, batch):
            loss, metrics = super().compute_loss(batch)
            x, _ = batch
            return loss + mx.where(mx.any(x[0, 0] == 1234.0), mx.array(float("nan")), 0.0), metrics

    batches = make_batches()
    x3, y3 = batches[3]
    x3 = np.array(x3)
    x3[0, 0] = 1234.0
    batches[3] = (mx.array(x3), y3)
    clean, skipping = RecordingLogger(), RecordingLogger()
    quiet_trainer(tmp_path, max_epochs=1, log_every_n_steps=1, logger=clean).fit(
        TinyClassifier(), make_batches()
    )
    trainer = quiet_trainer(tmp_path, max_epochs=1, log_every_n_steps=1, logger=skipping)
    trainer.fit(NaNAtBatch3(), batches)
    assert "skipped_steps" not in clean.keys()  # always 0: no series
    skips = [(s, m["skipped_steps"]) for s, m in skipping.metrics if "skipped_steps" in m]
    assert skips[0] == (4, 1) and all(count == 1 for _, count in skips) and len(skips) == 3


# ------------------------------------------------------------------ TensorBoard's HParams tab


def test_tensorboard_hyperparameters_reach_the_hparams_tab(tmp_path):
    from tensorboard.plugins.hparams import api_pb2

    logger = TensorBoardLogger(tmp_path, name="hp")
    logger.log_hyperparams({"lr": 0.1, "net": {"depth": 3, "act": "relu"}, "dims": [1, 2], "none": None})
    logger.log_metrics({"val_loss": 0.3}, step=1)
    logger.finalize("success")
    records = read_hparams_plugin(logger.log_dir)
    # Session records only: TensorBoard builds the table from them and takes the run's scalars as metrics.
    assert set(records) == {"_hparams_/session_start_info", "_hparams_/session_end_info"}
    hparams = records["_hparams_/session_start_info"].session_start_info.hparams
    assert hparams["lr"].number_value == 0.1 and hparams["net/depth"].number_value == 3
    assert hparams["net/act"].string_value == "relu" and hparams["dims"].string_value == "[1, 2]"
    assert "none" not in hparams
    assert records["_hparams_/session_end_info"].session_end_info.status == api_pb2.STATUS_SUCCESS

    failed = TensorBoardLogger(tmp_path, name="hp")
    failed.log_hyperparams({"lr": 1.0})
    failed.finalize("failed")
    end = read_hparams_plugin(failed.log_dir)["_hparams_/session_end_info"].session_end_info
    assert end.status == api_pb2.STATUS_FAILURE


def test_tensorboard_interrupted_run_writes_no_session_end_so_the_resumed_runs_status_shows(tmp_path):
    """TensorBoard keeps a run folder's first session end: one written at a Ctrl-C (as success) would have
    shown a resumed run that then failed as successful in the HParams tab."""
    from tensorboard.plugins.hparams import api_pb2

    first = TensorBoardLogger(tmp_path, name="hp")
    first.log_hyperparams({"lr": 0.1})
    first.log_metrics({"loss": 1.0}, step=1)
    state = first.state_dict()
    first.finalize("interrupted")
    assert set(read_hparams_plugin(first.log_dir)) == {"_hparams_/session_start_info"}
    resumed = TensorBoardLogger(tmp_path, name="hp")
    resumed.load_state_dict(state)
    resumed.log_hyperparams({"lr": 0.1})  # (as the Trainer's fit does)
    resumed.log_metrics({"loss": 0.5}, step=2)
    resumed.finalize("failed")
    end = read_hparams_plugin(resumed.log_dir)["_hparams_/session_end_info"].session_end_info
    assert end.status == api_pb2.STATUS_FAILURE


def test_tensorboard_resume_from_step_0_keeps_the_hparams_and_step_0s_values_once(tmp_path):
    """A checkpoint taken at step 0 with values at that step: step 0 also holds the run's hyperparameters
    (the HParams tab's session start and the text summary), which a purge from step 0 would drop."""
    first = TensorBoardLogger(tmp_path, name="hp")
    first.log_hyperparams({"lr": 0.1})
    first.log_metrics({"loss": 1.0}, step=0)
    state = first.state_dict()
    first.finalize("interrupted")
    resumed = TensorBoardLogger(tmp_path, name="hp")
    resumed.load_state_dict(state)
    resumed.log_metrics({"loss": 0.5}, step=1)
    resumed.finalize("success")
    assert "_hparams_/session_start_info" in read_hparams_plugin(resumed.log_dir)
    assert read_text_summaries(resumed.log_dir, "hparams/text_summary") == [
        "| name | value |\n|---|---|\n| lr | 0.1 |"
    ]
    assert read_scalars(resumed.log_dir)["loss"] == [(0, 1.0), (1, 0.5)]


def test_tensorboard_hparams_tab_shows_the_trainers_settings_of_a_fit(tmp_path):
    from tasks import TinyClassifier, make_batches, quiet_trainer

    logger = TensorBoardLogger(tmp_path, name="fit")
    logger.log_hyperparams({"batch_size": 16})  # the user's, logged before fit: the same session
    quiet_trainer(tmp_path, max_steps=2, logger=logger).fit(TinyClassifier(), make_batches())
    hparams = read_hparams_plugin(logger.log_dir)["_hparams_/session_start_info"].session_start_info.hparams
    assert hparams["batch_size"].number_value == 16 and hparams["trainer/max_steps"].number_value == 2
    assert hparams["module"].string_value == "TinyClassifier"


def test_tensorboard_resume_with_changed_hyperparameters_says_the_hparams_tab_keeps_the_first(tmp_path):
    """TensorBoard keeps a run folder's first session start, so after a resume with other settings the
    HParams tab showed the first run's values (num_epochs 6 for a run that trained 8), without a word."""
    first = TensorBoardLogger(tmp_path, name="hp")
    first.log_hyperparams({"num_epochs": 6, "lr": 0.1, "dims": [1, 2]})
    first.log_metrics({"loss": 1.0}, step=1)
    state = first.state_dict()
    first.finalize("interrupted")
    resumed = TensorBoardLogger(tmp_path, name="hp")
    resumed.load_state_dict(state)
    with pytest.warns(LoggerWarning) as record:
        resumed.log_hyperparams({"num_epochs": 8, "lr": 0.1, "dims": (1, 2), "new": 1})
        resumed.start()  # (the Trainer starts it as fit starts; what was logged before is written then)
    (message,) = [str(w.message) for w in record if issubclass(w.category, LoggerWarning)]
    assert f"params changed in resumed run {resumed.log_dir}: num_epochs (old 6, new 8)." in message
    assert "HParams tab keeps the first values" in message and "lr" not in message and "dims" not in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resumed.log_hyperparams({"num_epochs": 8})  # already said
    resumed.finalize("success")
    start = read_hparams_plugin(resumed.log_dir)["_hparams_/session_start_info"].session_start_info
    assert start.hparams["num_epochs"].number_value == 6  # (what TensorBoard shows, and why it warns)
    assert yaml.safe_load((resumed.log_dir / "hparams.yaml").read_text())["num_epochs"] == 8


# ------------------------------------------------------------------ artifacts and log_model


@pytest.fixture
def quiet_wandb(tmp_path, monkeypatch):
    import wandb

    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb-data"))  # W&B stages offline artifacts here
    return wandb.Settings(console="off", silent=True)


def make_folder(root, files):
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_log_artifact_stores_files_and_folders_in_wandb_and_mlflow(tmp_path, mlflow_store, quiet_wandb):
    export = make_folder(tmp_path / "hf_export", {"config.json": "{}", "sub/weights.bin": "w"})
    plot = make_folder(tmp_path / "plots", {"curves.png": "png"}) / "curves.png"
    w = WandbLogger(project="audiotrain-tests", save_dir=tmp_path, offline=True, settings=quiet_wandb)
    m = MLflowLogger(experiment_name="artifacts", tracking_uri=mlflow_store[1])
    for logger in (w, m):
        logger.log_artifact(export, artifact_type="model")
        logger.log_artifact(plot, "plots/curves.png")
        logger.finalize("success")
    w.finish()
    assert sorted(wandb_artifacts(w.log_dir)) == [
        ("hf_export", "model", ["latest"], {"config.json": b"{}", "sub/weights.bin": b"w"}),
        ("plots-curves.png", "file", ["latest"], {"curves.png": b"png"}),
    ]
    run = read_mlflow_run_in_a_fresh_process(mlflow_store[1], m.version)
    assert run["artifacts"] == ["hf_export/config.json", "hf_export/sub/weights.bin", "plots/curves.png"]


def test_mlflow_log_artifact_stores_a_file_under_the_name_given(tmp_path, mlflow_store):
    notes = make_folder(tmp_path / "out", {"notes.txt": "n"}) / "notes.txt"
    logger = MLflowLogger(experiment_name="artifacts", tracking_uri=mlflow_store[1])
    logger.log_artifact(notes, "results/summary.txt")
    logger.finalize("success")
    run = read_mlflow_run_in_a_fresh_process(mlflow_store[1], logger.version)
    assert run["artifacts"] == ["results/summary.txt"]


def test_mlflow_keeps_the_users_own_http_settings(monkeypatch, mlflow_store):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "77")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    logger = MLflowLogger(experiment_name="http", tracking_uri=mlflow_store[1])
    logger.log_metrics({"loss": 1.0}, step=0)
    logger.finalize("success")
    assert logger.failures == 0
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "77"  # (only unset ones are bounded, then unset)
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "3"


def test_log_artifact_is_accepted_and_does_nothing_where_the_run_folder_is_local(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    for logger in (CSVLogger(tmp_path / "csv"), TensorBoardLogger(tmp_path / "tb")):
        logger.log_artifact(tmp_path / "a.txt")
        assert not logger.root_dir.exists()  # no run was opened for it
        with pytest.raises(FileNotFoundError, match=r"log_artifact: .*missing.png does not exist"):
            logger.log_artifact(tmp_path / "missing.png")


def fit_with_checkpoints(
    tmp_path, loggers, extra_callbacks=(), *, first_callbacks=(), module=None, **checkpoint
):
    """A 3-epoch fit whose ModelCheckpoint (returned) takes `checkpoint`; the Trainer's callbacks are
    `first_callbacks`, it, then `extra_callbacks`."""
    from audiotrain.train.callbacks import ModelCheckpoint

    from tasks import TinyClassifier, make_batches, quiet_trainer

    callback = ModelCheckpoint(dirpath=tmp_path / "ckpts", **checkpoint)
    trainer = quiet_trainer(
        tmp_path,
        max_epochs=3,
        logger=loggers,
        callbacks=[*first_callbacks, callback, *extra_callbacks],
        enable_checkpointing=True,
    )
    trainer.fit(module or TinyClassifier(), make_batches(64), make_batches(32, seed=1))
    return callback


@pytest.mark.parametrize("every_epoch_first", [False, True])
def test_log_model_true_uploads_the_best_checkpoint_when_fit_ends(
    tmp_path, mlflow_store, quiet_wandb, every_epoch_first
):
    w = WandbLogger(
        project="audiotrain-tests", save_dir=tmp_path, offline=True, settings=quiet_wandb, log_model=True
    )
    m = MLflowLogger(experiment_name="log-model", tracking_uri=mlflow_store[1], log_model=True)
    from audiotrain.train.callbacks import ModelCheckpoint

    every_epoch = ModelCheckpoint(dirpath=tmp_path / "every", filename="epoch={epoch}", save_top_k=-1)
    placed = {"first_callbacks" if every_epoch_first else "extra_callbacks": [every_epoch]}
    callback = fit_with_checkpoints(
        tmp_path, [w, m], **placed, monitor="val_loss", save_top_k=2, save_last=True
    )  # the monitoring callback's best is uploaded, not the every-epoch one's latest, in either order
    w.finish()
    best = Path(callback.best_model_path)
    files = {p.relative_to(best).as_posix(): p.read_bytes() for p in best.rglob("*") if p.is_file()}
    ((name, kind, aliases, uploaded),) = wandb_artifacts(w.log_dir)  # one upload: the best, at the end
    assert (name, kind, aliases) == (f"model-{w.version}", "model", ["best", "latest"]) and uploaded == files
    run = read_mlflow_run_in_a_fresh_process(mlflow_store[1], m.version)
    assert run["artifacts"] == sorted(f"checkpoints/{best.name}/{f}" for f in files)
    assert run["tags"]["best_checkpoint"] == f"checkpoints/{best.name}"


def test_wandb_log_model_metadata_holds_the_score_as_a_number_under_lightnings_keys(tmp_path, quiet_wandb):
    """Lightning 2.6.6's WandbLogger(log_model=True), fit with ModelCheckpoint(monitor="val_loss",
    save_top_k=2), gives each model artifact metadata {"score": 1.8034268617630005, "original_filename":
    "epoch=0-step=6.ckpt", "ModelCheckpoint": {"monitor": "val_loss", "mode": "min", "save_last": None,
    "save_top_k": 2, "save_weights_only": False, ...}}. Here the score was the text "0.6701062917709351"
    (W&B stores a float subclass as its str), which sorts and filters as text."""
    w = WandbLogger(
        project="audiotrain-tests", save_dir=tmp_path, offline=True, settings=quiet_wandb, log_model=True
    )
    callback = fit_with_checkpoints(tmp_path, [w], monitor="val_loss", save_top_k=2)
    w.finish()
    (path,) = wandb_glob(f"{w.log_dir}/run-*.wandb")
    records = wait_for_exit_record(path)
    (artifact,) = [r.artifact for r in records if r.WhichOneof("record_type") == "artifact"]
    metadata = json.loads(artifact.metadata)
    best = Path(callback.best_model_path)
    assert metadata["score"] == float(callback.best_model_score) and type(metadata["score"]) is float
    assert metadata["original_filename"] == best.name
    settings = {"monitor": "val_loss", "mode": "min", "save_last": None, "save_top_k": 2}
    assert settings.items() <= metadata["ModelCheckpoint"].items()
    assert metadata["ModelCheckpoint"]["save_weights_only"] is False


class RaisesAtEpoch2(Callback):
    def on_train_epoch_start(self, trainer, module):
        if trainer.current_epoch == 2:
            raise RuntimeError("stopped at epoch 2")


def test_log_model_true_uploads_nothing_when_fit_fails(tmp_path, mlflow_store, quiet_wandb):
    """As Lightning: only a fit that succeeds uploads its best checkpoint. A crash must not put a checkpoint
    in W&B as `model-<id>:best`, nor set MLflow's best_checkpoint tag that `MLflowCallback.register` reads."""
    w = WandbLogger(
        project="audiotrain-tests", save_dir=tmp_path, offline=True, settings=quiet_wandb, log_model=True
    )
    m = MLflowLogger(experiment_name="log-model-failed", tracking_uri=mlflow_store[1], log_model=True)
    with pytest.raises(RuntimeError, match="stopped at epoch 2"):
        fit_with_checkpoints(tmp_path, [w, m], [RaisesAtEpoch2()], monitor="val_loss", save_top_k=2)
    assert len(list((tmp_path / "ckpts").iterdir())) == 2  # (two epochs saved theirs before the crash)
    w.finish()
    assert wandb_artifacts(w.log_dir) == []
    run = read_mlflow_run_in_a_fresh_process(mlflow_store[1], m.version)
    assert run["status"] == "FAILED" and run["artifacts"] == [] and "best_checkpoint" not in run["tags"]


class LogsAtTeardown(Callback):
    def __init__(self, raises: bool):
        self.raises = raises

    def on_train_epoch_end(self, trainer, module):
        if self.raises:
            raise RuntimeError("failed at the epoch's end")

    def teardown(self, trainer, module, stage):
        trainer.logger.log_metrics({"final_score": 0.5}, step=trainer.global_step)


def test_a_failed_fits_mlflow_run_stays_failed_when_a_teardown_logs(tmp_path, mlflow_store):
    """The loggers' runs were closed before the teardown hooks: a callback's teardown that logs a final
    score reopened the MLflow run that `finalize("failed")` had just marked FAILED, and it ended FINISHED
    when Python exited (RUNNING until then), a crash listed as a finished run."""
    from mlflow.tracking import MlflowClient

    m = MLflowLogger(experiment_name="teardown-logs", tracking_uri=mlflow_store[1])
    t = quiet_trainer(tmp_path, max_epochs=1, logger=m, callbacks=[LogsAtTeardown(raises=True)])
    with pytest.raises(RuntimeError, match="failed at the epoch's end"):
        t.fit(TinyClassifier(), make_batches(16))
    run = MlflowClient(mlflow_store[1]).get_run(m.run_id)
    assert run.info.status == "FAILED" and run.data.metrics["final_score"] == 0.5


class RecordsFinalize(CSVLogger):
    def finalize(self, status="success"):
        self.seen.append(f"finalize:{status}")
        super().finalize(status)


def test_the_loggers_are_finalized_after_the_teardown_hooks_as_in_lightning(tmp_path):
    """Lightning 2.6.6's `_call_teardown_hook` calls the callbacks' and the module's `teardown`, then each
    logger's `finalize("success")` (recorded there: ['teardown', 'teardown:module', 'finalize:success'])."""
    seen = []

    class Module(TinyClassifier):
        def teardown(self, stage):
            seen.append("teardown:module")

    class Tears(Callback):
        def teardown(self, trainer, module, stage):
            seen.append("teardown")

    logger = RecordsFinalize(tmp_path)
    logger.seen = seen
    t = quiet_trainer(tmp_path, max_epochs=1, logger=logger, callbacks=[Tears()])
    t.fit(Module(), make_batches(16))
    assert seen == ["teardown", "teardown:module", "finalize:success"]


class ScoresLessEachEpoch(TinyClassifier):
    """`score` is 3 in epoch 0, 2 in epoch 1, 1 in epoch 2: with mode="max" the first checkpoint is best."""

    def on_validation_epoch_end(self):
        self.log("score", 3.0 - self.current_epoch)


def test_mlflow_log_model_all_tags_the_best_checkpoint_not_the_newest(tmp_path, mlflow_store):
    m = MLflowLogger(experiment_name="log-model-all", tracking_uri=mlflow_store[1], log_model="all")
    callback = fit_with_checkpoints(
        tmp_path, [m], module=ScoresLessEachEpoch(), monitor="score", mode="max", save_top_k=-1
    )
    best = Path(callback.best_model_path)
    assert "epoch=0" in best.name  # (the premise: not the newest of the three)
    run = read_mlflow_run_in_a_fresh_process(mlflow_store[1], m.version)
    assert {a.split("/")[1] for a in run["artifacts"]} == {p.name for p in (tmp_path / "ckpts").iterdir()}
    assert run["tags"]["best_checkpoint"] == f"checkpoints/{best.name}"


def test_log_model_all_uploads_every_checkpoint_as_it_is_saved(tmp_path, quiet_wandb):
    w = WandbLogger(
        project="audiotrain-tests", save_dir=tmp_path, offline=True, settings=quiet_wandb, log_model="all"
    )
    fit_with_checkpoints(tmp_path, [w], save_top_k=-1)  # one checkpoint per epoch, all kept
    w.finish()
    uploads = wandb_artifacts(w.log_dir)
    assert len(uploads) == 3 and all(name == f"model-{w.version}" for name, *_ in uploads)
    with pytest.raises(ValueError, match="log_model must be False, True or 'all', got 'best'"):
        WandbLogger(log_model="best")


def test_log_model_false_uploads_nothing(tmp_path, quiet_wandb):
    w = WandbLogger(project="audiotrain-tests", save_dir=tmp_path, offline=True, settings=quiet_wandb)
    fit_with_checkpoints(tmp_path, [w], save_last=True)
    w.finish()
    assert wandb_artifacts(w.log_dir) == []


def test_a_pickled_wandb_logger_goes_on_in_the_same_run(tmp_path, quiet_wandb):
    """Lightning's WandbLogger pickles (test_wandb_pickle), the copy logging to the run of the same id; here
    pickling failed on the wandb module (TypeError: cannot pickle 'module' object)."""
    import pickle

    logger = WandbLogger(project="audiotrain-tests", save_dir=tmp_path, offline=True, settings=quiet_wandb)
    logger.log_metrics({"loss": 1.0}, step=1)
    logger.finalize("success")
    copied = pickle.loads(pickle.dumps(logger))
    with warnings.catch_warnings():
        warnings.simplefilter("error", LoggerWarning)
        copied.log_metrics({"loss": 0.5}, step=2)
    assert copied.version == logger.version and copied.experiment.id == logger.version
    copied.finish()


def test_a_new_wandb_logger_finishes_the_run_an_earlier_one_left_open(tmp_path, quiet_wandb):
    first = WandbLogger(
        project="audiotrain-tests", save_dir=tmp_path / "a", offline=True, settings=quiet_wandb
    )
    first.log_metrics({"loss": 1.0}, step=1)
    first.finalize("success")  # open for a later stage of the same logger
    second = WandbLogger(
        project="audiotrain-tests", save_dir=tmp_path / "b", offline=True, settings=quiet_wandb
    )
    second.log_metrics({"loss": 2.0}, step=1)  # its own run, not the one wandb.init would hand back
    second.finish()
    assert first.version != second.version
    for logger in (first, second):
        (path,) = wandb_glob(f"{logger.log_dir}/run-*.wandb")
        kinds = [r.WhichOneof("record_type") for r in wait_for_exit_record(path)]
        assert "exit" in kinds  # finished


def test_each_wandb_logger_of_a_sweep_gets_its_own_run_and_config(tmp_path, quiet_wandb):
    # A sweep rebinding `logger` each trial: once the previous logger was collected, the run its fit left open
    # was still wandb.run, and wandb.init handed it back: the next trial logged there, with the old config.
    import gc

    import wandb
    from tasks import TinyClassifier, make_batches, quiet_trainer

    runs = []
    for lr in (0.1, 0.2, 0.3):
        logger = WandbLogger(
            project="audiotrain-tests",
            save_dir=tmp_path,
            offline=True,
            settings=quiet_wandb,
            config={"lr": lr},
        )
        trainer = quiet_trainer(tmp_path, max_epochs=1, logger=logger)
        trainer.fit(TinyClassifier(), make_batches(32))
        runs.append((logger.version, wandb.run.id, wandb.run.config["lr"]))
        del logger, trainer
        gc.collect()
    wandb.finish()
    assert [lr for *_, lr in runs] == [0.1, 0.2, 0.3]
    assert all(version == run_id for version, run_id, _ in runs)
    assert len({version for version, *_ in runs}) == 3
    assert len(wandb_glob(str(tmp_path / "wandb" / "offline-run-*"))) == 3  # no empty folders beside them


def test_a_score_logged_after_each_trials_fit_keeps_every_trial_in_a_run_of_its_own(tmp_path, quiet_wandb):
    # A sweep that logs each trial's final score after its fit (`logger.log_metrics(...)` or
    # `logger.experiment.summary[...]`): that reopened the trial's run outside any stage, and the next trial's
    # logger no longer finished it, so wandb.init handed it back: every trial logged into the first one's run.

    from tasks import TinyClassifier, make_batches, quiet_trainer

    runs = []
    for trial, lr in enumerate((0.1, 0.2, 0.3)):
        logger = WandbLogger(
            project="audiotrain-tests", name=f"trial{trial}", save_dir=tmp_path, offline=True,
            settings=quiet_wandb, config={"lr": lr},
        )  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("error", LoggerWarning)  # "was already active, so wandb.init returned it"
            quiet_trainer(tmp_path / f"trial{trial}", max_epochs=1, logger=logger).fit(
                TinyClassifier(), make_batches(32)
            )
        logger.log_metrics({"final_score": lr})
        logger.experiment.summary["best"] = lr
        runs.append((logger.version, logger.name))
    logger.finish()
    assert len({version for version, _ in runs}) == 3
    assert [name for _, name in runs] == ["trial0", "trial1", "trial2"]


def test_a_wandb_sweep_agents_trial_logs_into_the_agents_run_without_a_warning(tmp_path, quiet_wandb):
    # In a W&B sweep the agent's function starts each trial's run with wandb.init() and trains with a
    # WandbLogger, which logs into that run. Every trial warned to call wandb.finish() first, which would end
    # the run the agent made for the trial.
    import wandb
    from tasks import TinyClassifier, make_batches, quiet_trainer

    quiet = wandb.Settings(console="off", silent=True, sweep_id="sweep123")  # as wandb.agent's runs have
    for trial in range(2):
        run = wandb.init(project="audiotrain-tests", dir=tmp_path, mode="offline", settings=quiet)
        assert run.sweep_id == "sweep123"
        logger = WandbLogger(project="audiotrain-tests", save_dir=tmp_path, offline=True, settings=quiet)
        with warnings.catch_warnings():
            warnings.simplefilter("error", LoggerWarning)
            quiet_trainer(tmp_path / f"trial{trial}", max_epochs=1, logger=logger).fit(
                TinyClassifier(), make_batches(32)
            )
        assert logger.version == run.id and not logger.disabled
        wandb.finish()


def test_a_wandb_logger_started_inside_the_users_own_run_says_so(tmp_path, quiet_wandb):
    import wandb

    mine = wandb.init(project="audiotrain-tests", dir=tmp_path, mode="offline", settings=quiet_wandb)
    logger = WandbLogger(project="audiotrain-tests", save_dir=tmp_path, offline=True, settings=quiet_wandb)
    with pytest.warns(LoggerWarning, match=f"W&B run '{mine.id}' .* was already active"):
        logger.log_metrics({"loss": 1.0}, step=0)
    assert logger.version == mine.id and not logger.disabled
    wandb.finish()


def test_a_run_left_open_by_fit_is_finished_quietly_when_python_exits(fresh_process):
    # The hook that finishes open runs at exit must run before wandb's own: exit hooks run newest first, and
    # registered at import it met a shut-down service ("WandbLogger failed in finish: Connection lost").
    status, said, stderr, _, _ = fresh_process
    assert status == 0, stderr[-3000:]
    assert "failed in finish" not in stderr and "LoggerWarning" not in stderr
    (path,) = wandb_glob(f"{said['wandb run']}/run-*.wandb")
    assert "exit" in [r.WhichOneof("record_type") for r in wait_for_exit_record(path)]


def test_a_fit_refused_before_its_run_starts_opens_no_run_and_keeps_the_hyperparameters(tmp_path):
    # A refused fit (here: a ckpt_path that does not exist) must not leave a run holding the hyperparameters
    # meant for the next fit's run (one more version/run per failed attempt).
    from audiotrain import Trainer
    from audiotrain.train.loggers import CSVLogger

    from tasks import TinyClassifier, make_batches

    logger = CSVLogger(tmp_path, name="csv")
    logger.log_hyperparams({"note": "for the real run"})
    trainer = Trainer(max_epochs=1, default_root_dir=tmp_path, enable_progress_bar=False, logger=logger)
    with pytest.raises(Exception, match="does not exist"):
        trainer.fit(TinyClassifier(), make_batches(), ckpt_path=tmp_path / "missing")
    assert not (tmp_path / "csv").exists()
    trainer.fit(TinyClassifier(), make_batches())
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()) == ["version_0"]
    assert "for the real run" in (tmp_path / "csv" / "version_0" / "hparams.yaml").read_text()


@pytest.mark.parametrize(
    "make",
    [
        lambda d: __import__("audiotrain").train.loggers.CSVLogger(save_dir=d),
        lambda d: __import__("audiotrain").train.loggers.TensorBoardLogger(save_dir=d),
        lambda d: __import__("audiotrain").train.loggers.MLflowLogger(save_dir=d),
        lambda d: __import__("audiotrain").train.loggers.WandbLogger(project="p", save_dir=d, offline=True),
    ],
    ids=["csv", "tensorboard", "mlflow", "wandb"],
)
def test_a_logger_folder_that_is_a_file_is_refused_when_the_logger_is_made(tmp_path, make):
    """It warned once the run began, turned itself off, and the run trained unlogged (its log_dir naming a
    folder that was never made)."""
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    with pytest.raises(NotADirectoryError, match=r"save_dir='.*notes\.txt'\): .*notes\.txt is a file, not a"):
        make(str(notes))
    with pytest.raises(NotADirectoryError, match=r"notes\.txt is a file, not a folder, so .*logs cannot be"):
        make(str(notes / "logs"))
    assert notes.read_text() == "mine"


def test_a_finished_tensorboard_logger_lets_go_of_its_event_writer(tmp_path):
    # tensorboardX's exit handler held every closed EventFileWriter (a queue, a thread, locks) until the
    # process exited: one per fit, validate or test, so a search of thousands of fits grew.
    import gc

    event_file_writer = pytest.importorskip("tensorboardX.event_file_writer").EventFileWriter
    from tasks import TinyClassifier, make_batches, quiet_trainer

    gc.collect()
    before = sum(type(o) is event_file_writer for o in gc.get_objects())
    for _ in range(3):
        trainer = quiet_trainer(tmp_path, max_epochs=1, logger=TensorBoardLogger(tmp_path))
        trainer.fit(TinyClassifier(), make_batches(), make_batches(32, seed=1))
        trainer.validate(trainer.module, make_batches(32, seed=1))
    del trainer
    gc.collect()
    assert sum(type(o) is event_file_writer for o in gc.get_objects()) == before
    assert len(list(tmp_path.rglob("events.out.tfevents.*"))) == 6  # (each stage wrote its file)


class _Scored(TinyClassifier):
    """TinyClassifier whose arguments are its hyperparameters, as a model loaded for scoring has them."""

    def __init__(self, hidden: int = 16, lr: float = 1e-2):
        super().__init__(hidden=hidden, lr=lr)
        self.save_hyperparameters()


@pytest.mark.parametrize("stage", ["validate", "test"])
def test_a_model_scored_without_fit_has_its_hyperparameters_in_the_loggers(tmp_path, mlflow_store, stage):
    """As Lightning logs the module's hyperparameters at every stage: `trainer.test(model)` of a model loaded
    from a checkpoint names its hparams in the logger's run. The run had the metrics only (no hparams.yaml, no
    MLflow param), so an evaluation could not be told from another model's."""
    from tasks import make_batches, quiet_trainer

    csv_logger = CSVLogger(save_dir=tmp_path / "csv")
    mlflow_logger = MLflowLogger(experiment_name="scored", tracking_uri=mlflow_store[1])
    trainer = quiet_trainer(tmp_path, logger=[csv_logger, mlflow_logger])
    getattr(trainer, stage)(_Scored(hidden=12, lr=0.5), make_batches(32))
    hparams = yaml.safe_load((csv_logger.log_dir / "hparams.yaml").read_text())
    assert hparams == {"hparams/hidden": 12, "hparams/lr": 0.5}
    params = read_mlflow_run_in_a_fresh_process(mlflow_logger.tracking_uri, mlflow_logger.run_id)["params"]
    assert params == {"hparams/hidden": "12", "hparams/lr": "0.5"}


def test_the_loggers_get_the_hyperparameters_save_hyperparameters_recorded_not_later_changes(tmp_path):
    """Lightning 2.6.6 logs `hparams_initial` of the module and of the datamodule (hparams.yaml held
    running_arg: 123 and bs: 2 below) while its checkpoint holds the changed `hparams` (-1, 5); audiotrain
    logged the changed values."""
    from audiotrain import DataModule

    from tasks import make_batches, quiet_trainer

    class Data(DataModule):
        def __init__(self, bs: int = 2):
            super().__init__()
            self.save_hyperparameters()

        def train_dataloader(self):
            return make_batches(32)

    module, data = _Scored(hidden=12), Data()
    module.hparams.hidden = -1
    data.hparams.bs = 5
    trainer = quiet_trainer(tmp_path, max_epochs=1, logger=CSVLogger(tmp_path), enable_checkpointing=True)
    trainer.fit(module, datamodule=data)
    hparams = yaml.safe_load((trainer.logger.log_dir / "hparams.yaml").read_text())
    assert hparams["hparams/hidden"] == 12 and hparams["datamodule_hparams/bs"] == 2
    state = json.loads((Path(trainer.checkpoint_callback.last_model_path) / "trainer_state.json").read_text())
    assert state["hyper_parameters"]["hidden"] == -1 and state["config"]["datamodule_hparams"] == {"bs": 5}


class _LogsEpochAsStep(TinyClassifier):
    """Lightning's idiom for an epoch x axis, `self.log("step", self.current_epoch)`: in the step (run for
    validation too; eager, as a compiled step would keep the traced epoch) or, compiled, in the hooks."""

    def __init__(self, where: str = "hooks", first_step: float = 0.0):
        super().__init__()
        self.where, self.first_step = where, first_step

    def log_epoch_as_step(self, where: str):
        if where == self.where:
            self.log("step", self.first_step + self.current_epoch)

    def compute_loss(self, batch):
        self.log_epoch_as_step("step")
        return super().compute_loss(batch)

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.log_epoch_as_step("hooks")

    def on_validation_epoch_end(self):
        self.log_epoch_as_step("hooks")

    def on_train_epoch_end(self):
        self.log("step", self.first_step + self.current_epoch)
        self.log("epoch_hook", 10.0 + self.current_epoch)


def _fit_logging_epoch_as_step(tmp_path, module, max_epochs=3, ckpt_path=None, **flags):
    from tasks import make_batches, quiet_trainer

    csv_logger = CSVLogger(save_dir=tmp_path, version=0)
    tb_logger = TensorBoardLogger(save_dir=tmp_path, name="tb", version=0)
    trainer = quiet_trainer(
        tmp_path,
        max_epochs=max_epochs,
        logger=[csv_logger, tb_logger],
        log_every_n_steps=2,
        compile=module.where == "hooks",
        **flags,
    )
    trainer.fit(module, make_batches(64), make_batches(32, seed=1), ckpt_path=ckpt_path)
    return trainer, csv_logger, tb_logger


@pytest.mark.parametrize("where", ["step", "hooks"])
def test_a_value_logged_as_step_is_the_loggers_x_axis_as_in_lightning(tmp_path, where):
    """Lightning's logger connector pops a logged "step" and uses int(it) as every logger's step for the
    values logged with it (a training logging step's, with what on_train_batch_end logs; an epoch's end,
    with on_train_epoch_end's; an evaluation's end). It raised a ValueError here, and before that
    metrics.csv's step column took the value."""
    trainer, csv_logger, tb_logger = _fit_logging_epoch_as_step(tmp_path, _LogsEpochAsStep(where))
    header, rows = read_csv(csv_logger.metrics_file)
    assert header.count("step") == 1
    at = lambda key: [int(r["step"]) for r in rows if r[key]]  # noqa: E731
    assert at("train_loss") == [0, 0, 1, 1, 2, 2]  # 4 steps an epoch, logged every 2
    assert at("val_loss") == [0, 1, 2] and at("epoch_hook") == [0, 1, 2]
    assert at("train_loss_epoch") == [0, 1, 2]  # (with on_train_epoch_end's "step", as in Lightning)
    scalars = read_scalars(tb_logger.log_dir)
    assert "step" not in scalars
    assert [s for s, _ in scalars["train_loss"]] == [0, 0, 1, 1, 2, 2]
    assert [s for s, _ in scalars["val_loss"]] == [0, 1, 2] and [s for s, _ in scalars["epoch_hook"]] == [
        0,
        1,
        2,
    ]
    assert [s for s, _ in scalars["train_loss_epoch"]] == [0, 1, 2]
    # As Lightning's: callback_metrics and logged_metrics hold it; the history's step stays the global step.
    assert trainer.callback_metrics["step"] == 2.0 and trainer.logged_metrics["step"] == 2.0
    assert trainer.history["step"] == [4, 8, 12]


def test_a_run_resumed_with_a_logged_step_keeps_what_its_checkpoint_had_in_csv_and_tensorboard(tmp_path):
    """A resumed CSVLogger keeps the rows its checkpoint had (their count), not those at steps up to the
    global step: with "step" = epoch + 100 every row is past the global step, and a trim by step would drop
    them all. TensorBoard purges from the checkpoint's last logged step, right for an axis that grows."""
    from audiotrain.train.callbacks import ModelCheckpoint

    def fit(folder, ckpt_path=None):
        saves = ModelCheckpoint(
            dirpath=tmp_path / "ckpts", save_top_k=-1, every_n_epochs=1, filename="{epoch}"
        )
        flags = dict(callbacks=[saves], enable_checkpointing=True) if folder == "run" else {}
        module = _LogsEpochAsStep("hooks", 100.0)
        return _fit_logging_epoch_as_step(tmp_path / folder, module, ckpt_path=ckpt_path, **flags)[1:]

    def steps(csv_logger, tb_logger):
        rows = [
            (r["step"], sorted(k for k, v in r.items() if v)) for r in read_csv(csv_logger.metrics_file)[1]
        ]
        return rows, {tag: [s for s, _ in points] for tag, points in read_scalars(tb_logger.log_dir).items()}

    straight = steps(*fit("straight"))
    fit("run")
    with warnings.catch_warnings():
        # (the rows after its checkpoint, which it drops, come back the same: no copy of the file is kept)
        warnings.simplefilter("error", LoggerWarning)
        resumed = steps(*fit("run", ckpt_path=tmp_path / "ckpts" / "epoch=0"))
    assert resumed == straight
    assert [step for step, filled in resumed[0] if "train_loss" in filled] == [
        "100",
        "100",
        "101",
        "101",
        "102",
        "102",
    ]
    assert resumed[1]["val_loss"] == [100, 101, 102]


def test_wandb_takes_a_logged_step_below_the_global_step_as_trainer_global_step(tmp_path, quiet_wandb):
    """W&B refuses a `step=` below one it had; trainer/global_step is a value of each record (as Lightning's
    WandbLogger sends it), so the epoch-end values at "step" = epoch, logged after the training values at
    steps 2 and 4, reach the run at 0, 1, 2."""
    from tasks import make_batches, quiet_trainer

    logger = WandbLogger(project="audiotrain-tests", save_dir=tmp_path, offline=True, settings=quiet_wandb)
    trainer = quiet_trainer(tmp_path, max_epochs=3, logger=logger, log_every_n_steps=2)
    trainer.fit(_LogsEpochAsStep(where="epoch end only"), make_batches(64))
    logger.finish()
    (path,) = wandb_glob(f"{logger.log_dir}/run-*.wandb")
    history = [
        {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in r.history.item}
        for r in wait_for_exit_record(path)
        if r.WhichOneof("record_type") == "history"
    ]
    at = lambda key: [h["trainer/global_step"] for h in history if key in h]  # noqa: E731
    assert at("train_loss") == [2, 4, 6, 8, 10, 12] and at("train_loss_epoch") == [0, 1, 2]
    assert at("epoch_hook") == [0, 1, 2] and not any("step" in h for h in history)
    assert logger.failures == 0


def test_a_logging_steps_values_reach_the_csv_when_its_batch_end_hook_fails(tmp_path):
    """A logging step's values wait for on_train_batch_end (a "step" it logs is their x axis): a hook that
    raises there must not take the step's row out of metrics.csv."""
    from tasks import make_batches, quiet_trainer

    class FailsAtStep2(TinyClassifier):
        def on_train_batch_end(self, outputs, batch, batch_idx):
            if self.trainer.global_step == 2:
                raise RuntimeError("the hook failed")

    logger = CSVLogger(save_dir=tmp_path)
    trainer = quiet_trainer(tmp_path, max_epochs=1, logger=logger, log_every_n_steps=1)
    with pytest.raises(RuntimeError, match="the hook failed"):
        trainer.fit(FailsAtStep2(), make_batches(64))
    assert [r["step"] for r in read_csv(logger.metrics_file)[1] if r["train_loss"]] == ["1", "2"]


@pytest.mark.parametrize("value", [-1.0, float("nan")])
def test_a_logged_step_no_logger_can_take_is_refused_naming_the_call(tmp_path, value):
    from tasks import make_batches, quiet_trainer

    class LogsBadStep(TinyClassifier):
        def on_train_epoch_end(self):
            self.log("step", value)

    trainer = quiet_trainer(tmp_path, max_epochs=1, logger=CSVLogger(save_dir=tmp_path))
    with pytest.raises(
        ValueError, match=r"self\.log\('step', .*\): .*every logger's step .*expected a number >= 0"
    ):
        trainer.fit(LogsBadStep(), make_batches(32))


def test_a_logger_warning_points_at_the_users_fit_not_at_the_trainers_code(tmp_path):
    """A tracker out of reach (here an MLflow store under a file) and a CSV run resumed from an older
    checkpoint are said by LoggerWarnings located at the user's `fit` line: they named
    audiotrain/train/trainer.py's `lg.start()` and loggers/base.py's `self._call("start", None)`."""
    from audiotrain.train.callbacks import ModelCheckpoint

    from tasks import make_batches, quiet_trainer

    (tmp_path / "afile").write_text("")
    unreachable = MLflowLogger(tracking_uri=f"sqlite:///{tmp_path / 'afile' / 'ml.db'}")
    with pytest.warns(LoggerWarning, match="could not start its run") as caught:
        quiet_trainer(tmp_path, max_epochs=1, logger=unreachable).fit(TinyClassifier(), make_batches(32))
    assert {w.filename for w in caught if issubclass(w.category, LoggerWarning)} == {__file__}

    def fit(max_epochs, ckpt_path=None):
        saves = ModelCheckpoint(
            dirpath=tmp_path / "ckpts", save_top_k=-1, every_n_epochs=1, filename="{epoch}"
        )
        logger = CSVLogger(save_dir=tmp_path, version=0)
        trainer = quiet_trainer(
            tmp_path, max_epochs=max_epochs, logger=logger, callbacks=[saves], enable_checkpointing=True
        )
        trainer.fit(TinyClassifier(), make_batches(32), ckpt_path=ckpt_path)

    fit(3)  # (resumed to 2 epochs: the third's rows leave metrics.csv, said as the run ends)
    with pytest.warns(LoggerWarning, match="the resumed run goes on from its checkpoint's step") as caught:
        fit(2, ckpt_path=tmp_path / "ckpts" / "epoch=0")
    assert {w.filename for w in caught if issubclass(w.category, LoggerWarning)} == {__file__}


@pytest.mark.parametrize("hook", ["on_train_batch_end", "on_train_epoch_end"])
def test_a_checkpoint_a_callback_saves_in_an_end_hook_resumes_with_every_csv_value(tmp_path, hook):
    """A callback's own trainer.save_checkpoint in on_train_batch_end (step 2) or on_train_epoch_end (step 4)
    runs before the module's hook: the step's interval means or the epoch's means, held for that hook's
    values (a logged "step"), were not in the CSV yet, so the resumed run dropped them as logged after its
    checkpoint and, past that step, never logged them again."""
    from tasks import make_batches, quiet_trainer

    at = 2 if hook == "on_train_batch_end" else 4

    class SavesItself(Callback):
        pass

    def save(self, trainer, module, *args):
        if trainer.global_step == at:
            trainer.save_checkpoint(tmp_path / "mine")

    setattr(SavesItself, hook, save)

    def fit(ckpt_path=None):
        logger = CSVLogger(save_dir=tmp_path, version=0)
        callbacks = [SavesItself()] if ckpt_path is None else []
        flags = dict(max_epochs=2, logger=logger, callbacks=callbacks, log_every_n_steps=1)
        trainer = quiet_trainer(tmp_path, **flags)
        trainer.fit(TinyClassifier(), make_batches(64), ckpt_path=ckpt_path)
        _, rows = read_csv(logger.metrics_file)
        return {(r["step"], k) for r in rows for k, v in r.items() if v and k != "step"}

    uninterrupted = fit()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LoggerWarning)  # (the rows after the checkpoint are dropped)
        resumed = fit(ckpt_path=tmp_path / "mine")
    assert sorted(uninterrupted - resumed) == []


def test_a_warning_filter_another_thread_sets_while_mlflow_starts_its_store_is_kept():
    """The MLflow logger hid MLflow's and SQLAlchemy's deprecations as its store started with
    `warnings.catch_warnings`, which puts back the whole process's filter list it found: a filter another
    thread of a sweep added meanwhile (its own run starting) was dropped."""
    import warnings

    from audiotrain.train.loggers import mlflow_logger

    try:
        with mlflow_logger._quiet_store_start():
            warnings.filterwarnings("ignore", message="a filter another thread set")  # (as that thread would)
        assert any(f[1] and f[1].pattern == "a filter another thread set" for f in warnings.filters)
        modules = [getattr(f[3], "pattern", f[3]) for f in warnings.filters]  # (None, a str or a pattern)
        assert mlflow_logger._STORE_MODULES not in modules  # (the logger's own: gone)
    finally:
        warnings.filters[:] = [f for f in warnings.filters if not (f[1] and "another thread" in f[1].pattern)]


def test_a_custom_logger_written_for_lightning_with_rank_zero_experiment_runs_on_every_rank(monkeypatch):
    """`@rank_zero_experiment` (Lightning's decorator for a custom logger's `experiment`, imported from
    `lightning.pytorch.loggers.logger`, earlier `pytorch_lightning.loggers.base`) was missing: the import
    failed, so a Lightning logger did not run here unchanged."""
    from audiotrain.distributed import collectives
    from audiotrain.train.loggers import Logger, rank_zero_experiment
    from audiotrain.train.loggers.base import rank_zero_experiment as from_base

    assert from_base is rank_zero_experiment

    class Tracker(Logger):
        @property
        @rank_zero_experiment
        def experiment(self):
            """The tracking client."""
            return self.client

        def __init__(self):
            super().__init__()
            self.client = {"calls": []}

    tracker = Tracker()
    assert tracker.experiment is tracker.client and Tracker.experiment.__doc__ == "The tracking client."
    monkeypatch.setattr(collectives, "is_main_process", lambda: False)  # (as rank 1 of a job sees itself)
    elsewhere = tracker.experiment
    assert elsewhere is not tracker.client
    elsewhere.log_image("x", key=1)["deep"].add_scalar(1.0)  # (does nothing, as Lightning's stand-in)


@pytest.mark.timeout(300)  # (MLflow 2 retried the store it could not open for about 55 minutes)
def test_an_mlflow_database_in_a_folder_not_made_yet_is_made_with_every_declared_mlflow(fresh_process):
    # mlflow-skinny 2.10 (the declared minimum) did not make the database's folder: the run waited
    # "SQLAlchemy engine could not be created ... retried in 25.5 seconds" and on; MLflow 3 makes it.
    # (fresh_process's first MLflowLogger tracks to a store in such a folder, new/sub/ml.db)
    status, said, stderr, root, _ = fresh_process
    assert status == 0, stderr[-3000:]
    assert said["failures"] == "0" and said["new store"].split()[0] == "FINISHED", stderr[-3000:]
    assert (root / "new" / "sub" / "ml.db").is_file()


def test_an_mlflow_sqlite_uri_without_a_file_is_refused_naming_the_form_it_takes():
    # "sqlite://" (SQLAlchemy's in-memory database) named no file: the fit went on with the warning
    # "MLflowLogger could not start its run (AttributeError: 'NoneType' object has no attribute 'parent')".
    refused = r"tracking_uri='sqlite://'\): a SQLite store is a file, sqlite:///PATH"
    with pytest.raises(ValueError, match=refused):
        MLflowLogger(tracking_uri="sqlite://")


@pytest.mark.parametrize("uri", ["sqlte:///runs/m.db", "htp://localhost:5000"])
def test_an_mlflow_uri_of_a_scheme_no_store_takes_is_refused_naming_it(uri):
    # A typo in the scheme started the fit with the logger disabled by "MLflowLogger could not start its run
    # (UnsupportedModelRegistryStoreURIException: Model registry functionality is unavailable; ...)".
    scheme = uri.split(":")[0]
    with pytest.raises(ValueError, match=rf"tracking_uri='{scheme}:.*no store for the scheme '{scheme}'"):
        MLflowLogger(tracking_uri=uri)


def test_mlflow_uris_of_database_drivers_and_named_stores_are_taken():
    for uri in ["postgresql+psycopg2://u@host/db", "databricks", "databricks://profile", "https://h:1"]:
        assert MLflowLogger(tracking_uri=uri).tracking_uri == uri


@pytest.mark.parametrize("make", [CSVLogger, TensorBoardLogger])
def test_a_save_dir_under_the_home_folder_written_with_a_tilde_is_in_the_home_folder(
    make, tmp_path, monkeypatch
):
    """`CSVLogger(save_dir="~/logs")` wrote its metrics into a folder named `~` in the working folder (one a
    later `rm -r ~...` in a shell would aim at the home folder), while Trainer(default_root_dir="~/runs") and
    ModelCheckpoint(dirpath="~/ck") beside it wrote into the home folder."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    logger = make(save_dir="~/logs")
    logger.log_metrics({"loss": 1.0}, step=0)
    logger.finalize("success")
    assert Path(logger.log_dir) == tmp_path / "home" / "logs" / "default" / "version_0"
    assert any((tmp_path / "home" / "logs").rglob("*")) and not (tmp_path / "~").exists()


def test_tensorboard_experiment_takes_mlx_arrays_inside_add_scalars_and_add_hparams_dicts(tmp_path):
    """`add_scalars('val/loss', {'clean': loss, 'noisy': loss2}, step)` and `add_hparams(params, {'hp/acc':
    acc})` with the MLX scalars a hook computed raised tensorboardX's NotImplementedError ("Got <class
    'mlx.core.array'>, but expected numpy array or torch tensor"), though add_scalar took them: the arrays
    were converted only where they were arguments themselves, not values of a dict argument."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = TensorBoardLogger(tmp_path, name="tb")
    writer = logger.experiment
    writer.add_scalars("val/loss", {"clean": mx.array(0.5), "noisy": mx.array(0.75, dtype=mx.bfloat16)}, 3)
    writer.add_hparams({"lr": 0.1}, {"hp/acc": mx.array(0.25)}, name="hp", global_step=3)
    logger.finalize()
    for tag, value in (("clean", 0.5), ("noisy", 0.75)):
        events = EventAccumulator(str(logger.log_dir / "val" / "loss" / tag))  # (tensorboardX's layout)
        events.Reload()
        assert [(s.step, s.value) for s in events.Scalars("val/loss")] == [(3, value)]
    events = EventAccumulator(str(logger.log_dir / "hp"))
    events.Reload()
    assert [(s.step, s.value) for s in events.Scalars("hp/acc")] == [(3, 0.25)]


def test_a_disabled_wandb_logger_makes_no_media(monkeypatch):
    """W&B not logged in: the logger warned "nothing is logged to it; training goes on", yet a hook's
    `self.logger.log_image(...)` still made every wandb.Image (encoding each image) before dropping it, so a
    package wandb's media need (PIL for images: "wandb.Image needs the PIL package") stopped the fit that the
    warning said went on. A disabled logger's media calls check their arguments and do nothing more."""
    import wandb

    def refuse(**kwargs):
        raise wandb.errors.UsageError("No API key configured. Use `wandb login` to log in.")

    def no_pil(*args, **kwargs):
        raise ImportError("wandb.Image needs the PIL package. To get it, run 'pip install pillow'.")

    monkeypatch.setattr(wandb, "init", refuse)
    monkeypatch.setattr(wandb, "Image", no_pil)
    monkeypatch.setattr(wandb, "Table", no_pil)
    logger = WandbLogger(project="p")
    with pytest.warns(LoggerWarning, match="WandbLogger could not start its run"):
        logger.start()
    logger.log_image("val/spectrogram", [np.zeros((4, 4))], caption=["a"])
    logger.log_table("val/per_class", columns=["class"], data=[["maj"]])
    with pytest.raises(TypeError, match="images must be a list"):  # (still checked, as on every rank)
        logger.log_image("val/bad", np.zeros((4, 4)))
    assert logger.disabled and logger.failures == 1


def test_an_mlflow_store_in_the_trainers_folder_keeps_the_checkpoints_out_of_its_log(fresh_process):
    """``Trainer(default_root_dir=D, logger=MLflowLogger(save_dir=D))``: MLflow's file store reads every
    folder of D as an experiment, and the Trainer's ``checkpoints`` folder there made it print "Malformed
    experiment 'checkpoints'" with a traceback, twice, through the root logger, whose implicit
    ``basicConfig`` then turned the user's own ``logging.basicConfig(...)`` into a no-op."""
    status, said, stderr, root, _ = fresh_process
    assert status == 0, stderr[-3000:]
    assert (root / "trainer" / "checkpoints").is_dir(), stderr[-3000:]
    assert said["failures in the trainer's folder"] == "0", stderr[-3000:]
    assert "Malformed experiment" not in stderr
    assert "user: configured after fit" in stderr


def fitted_checkpoint(tmp_path, logger, epochs, ckpt_path=None):
    """A TinyClassifier fitted `epochs` epochs with `logger` (one or a list), resumed from `ckpt_path` where
    given; the checkpoint it saved last."""
    from audiotrain import Trainer

    from tasks import TinyClassifier, make_batches

    trainer = Trainer(
        default_root_dir=tmp_path,
        max_epochs=epochs,
        logger=logger,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        compile=False,
    )
    trainer.fit(TinyClassifier(), make_batches(), ckpt_path=ckpt_path)
    return trainer.checkpoint_callback.last_model_path or trainer.checkpoint_callback.best_model_path


def test_mlflow_resumed_into_a_store_without_the_checkpoints_run_logs_to_a_new_run_there(tmp_path):
    """A fit resumed with another MLflow store than the checkpoint's run was in (a moved `save_dir`, a new
    `tracking_uri`) had its logger disabled, "could not start its run (... Run '<id>' not found)": the whole
    resumed fit went unlogged. It starts a new run in that store, as Lightning's MLFlowLogger does, and says
    so."""
    from audiotrain import Trainer

    from mlflow.tracking import MlflowClient
    from tasks import TinyClassifier, make_batches

    def fit(logger, epochs, ckpt_path=None):
        trainer = Trainer(
            default_root_dir=tmp_path,
            max_epochs=epochs,
            logger=logger,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            log_every_n_steps=1,
            compile=False,
        )
        trainer.fit(TinyClassifier(), make_batches(), make_batches(32), ckpt_path=ckpt_path)
        return trainer.checkpoint_callback.last_model_path or trainer.checkpoint_callback.best_model_path

    first = MLflowLogger(save_dir=tmp_path / "store_a", experiment_name="moved")
    checkpoint = fit(first, 1)
    resumed = MLflowLogger(save_dir=tmp_path / "store_b", experiment_name="moved")
    with pytest.warns(
        LoggerWarning, match=rf"checkpoint's MLflow run {first.run_id} is not in this logger's store"
    ):
        fit(resumed, 2, checkpoint)
    assert resumed.failures == 0 and resumed.run_id not in (None, first.run_id)
    client = MlflowClient(tracking_uri=resumed.tracking_uri)
    assert [m.step for m in client.get_metric_history(resumed.run_id, "train_loss")] == list(range(7, 13))
    assert client.get_run(resumed.run_id).info.status == "FINISHED"


@pytest.mark.parametrize("kind", ["tensorboard", "csv", "wandb"])
def test_a_run_id_or_version_given_to_a_resumed_fit_that_the_checkpoints_replaces_is_named(
    tmp_path, quiet_wandb, kind
):
    """`fit(ckpt_path=...)` continues the checkpoint's run: a `TensorBoardLogger(version=5)` or
    `WandbLogger(id="other")` given to it logged to the checkpoint's version/id without a word, where
    Lightning's loggers (which keep no run in the checkpoint) log to the one given."""

    def logger(given):
        if kind == "wandb":
            extra = {} if given is None else {"id": given}
            return WandbLogger(project="p", save_dir=tmp_path, offline=True, settings=quiet_wandb, **extra)
        cls = TensorBoardLogger if kind == "tensorboard" else CSVLogger
        return cls(save_dir=tmp_path, version=given)

    def fit(logger, epochs, ckpt_path=None):
        return fitted_checkpoint(tmp_path, logger, epochs, ckpt_path)

    first = logger("firstrun" if kind == "wandb" else 3)
    checkpoint = fit(first, 1)
    first_version = first.version
    resumed = logger("other" if kind == "wandb" else 5)
    key, given = ("id", "'other'") if kind == "wandb" else ("version", "5")
    with pytest.warns(
        LoggerWarning, match=rf"\({key}={given}\): the checkpoint's run has {key} .*{first_version}"
    ):
        fit(resumed, 2, checkpoint)
    assert resumed.version == first_version
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(logger(None), 3, checkpoint)  # left out: the checkpoint's, without a word
        fit(logger(first_version), 3, checkpoint)  # the same one given: no word either
    assert not [w for w in caught if "the checkpoint's run has" in str(w.message)]


def test_a_resumed_fit_gives_each_logger_its_own_kinds_state_whatever_the_lists_order(tmp_path, quiet_wandb):
    """The saved logger states were handed out by place in the list: `[WandbLogger, TensorBoardLogger]`
    resumed as `[TensorBoardLogger, CSVLogger, WandbLogger]` (a logger added, the list reordered) gave the
    CSV logger TensorBoard's version, TensorBoard the W&B run's state, and W&B none, a new run."""

    def fit(loggers, epochs, ckpt_path=None):
        return fitted_checkpoint(tmp_path, loggers, epochs, ckpt_path)

    def wandb_logger():
        return WandbLogger(project="p", save_dir=tmp_path, offline=True, settings=quiet_wandb)

    first = [wandb_logger(), TensorBoardLogger(save_dir=tmp_path / "tb", version=2)]
    checkpoint = fit(first, 1)
    resumed = [
        TensorBoardLogger(save_dir=tmp_path / "tb"),
        CSVLogger(save_dir=tmp_path / "csv"),
        wandb_logger(),
    ]
    fit(resumed, 2, checkpoint)
    tensorboard, csv_logger, wandb_resumed = resumed
    assert wandb_resumed.version == first[0].version
    assert tensorboard.version == 2 and csv_logger.version == 0
    assert sorted(os.listdir(tmp_path / "tb" / "default")) == ["version_2"]


@pytest.mark.parametrize("resume", ["must", "allow"])
def test_wandb_resume_given_by_the_user_reaches_wandb_init_on_a_resumed_fit(monkeypatch, resume):
    """`WandbLogger(resume="must")` (fail rather than start a new run online) was replaced by "allow" once
    the checkpoint's run id was set; Lightning's WandbLogger passes the user's `resume` on."""
    calls = []

    class FakeRun:
        id, name, dir = "abc123", "resumed", "/tmp"

        def define_metric(self, *args, **kwargs):
            pass

        def log(self, data):
            pass

    fake = types.SimpleNamespace(init=lambda **kw: calls.append(kw) or FakeRun())
    monkeypatch.setitem(sys.modules, "wandb", fake)
    logger = WandbLogger(project="p", resume=resume)
    logger.load_state_dict({"run_id": "abc123"})
    logger.log_metrics({"loss": 1.0}, step=7)
    assert calls[0]["id"] == "abc123" and calls[0]["resume"] == resume


def test_wandb_resume_never_on_a_resumed_fit_starts_a_new_run_and_says_so(tmp_path):
    """`WandbLogger(resume="never")` on a fit resumed from a checkpoint passed W&B the checkpoint's run id
    with resume="never", which W&B refuses where that run exists, so the resumed fit logged nothing to W&B.
    The user asked for a new run: it gets one, and a warning naming the checkpoint's run."""
    import wandb

    def logger(**kwargs):
        return WandbLogger(
            project="p", save_dir=tmp_path, offline=True, settings=wandb.Settings(silent=True), **kwargs
        )

    first = logger()
    first.log_metrics({"loss": 1.0}, step=1)
    first.finalize("success")
    first.finish()
    resumed = logger(resume="never")
    with pytest.warns(LoggerWarning, match=f"checkpoint's W&B run is '{first.version}'.*new run"):
        resumed.load_state_dict(first.state_dict())
    resumed.log_metrics({"loss": 0.5}, step=2)
    resumed.finalize("success")
    resumed.finish()
    assert resumed.version != first.version
    assert resumed.offline_dirs == [resumed.log_dir]


def test_a_logger_subclass_imported_from_another_module_path_keeps_its_run_on_resume(tmp_path):
    """Saved states went to the logger of the same module path and class: a user's `MyCSV(CSVLogger)` saved
    as `__main__.MyCSV` (`python train.py`) and resumed as `pkg.train.MyCSV` (`python -m pkg.train`, or the
    class moved into a module) took none, so the resumed fit opened version 4 beside the run's version 3,
    without a word (it continued version 3 when the states went by place)."""
    from audiotrain import Trainer

    def fit(logger, epochs, ckpt_path=None):
        trainer = Trainer(
            default_root_dir=tmp_path,
            max_epochs=epochs,
            logger=[logger],
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            compile=False,
            log_every_n_steps=1,
        )
        trainer.fit(TinyClassifier(), make_batches(), ckpt_path=ckpt_path)
        return trainer.checkpoint_callback.last_model_path

    def my_csv(module, version=None):
        return type("MyCSV", (CSVLogger,), {"__module__": module})(save_dir=tmp_path / "csv", version=version)

    first = my_csv("__main__", version=3)
    checkpoint = fit(first, 1)
    resumed = my_csv("pkg.train")
    fit(resumed, 2, checkpoint)
    assert resumed.version == 3
    assert sorted(os.listdir(tmp_path / "csv" / "default")) == ["version_3"]


def test_a_chords_evaluation_reopens_no_other_kinds_run_for_its_logger(tmp_path):
    """The chords recipe's evaluation of a trained run (`evaluate_trained_run`) reopened the checkpoint's
    logger runs by place: `--logger csv` asked after a `--logger tensorboard` training took TensorBoard's
    version 7 as the CSV logger's (a csv/version_7 no fit wrote). Each logger takes its own kind's run, as a
    resumed fit's do; none here, so the scores go to no logger, said why."""
    from audiotrain.recipes.chords.train import _reopened_loggers
    from audiotrain.train.loggers.config import LoggerConfig

    ended = {
        "loggers": [{"version": 7, "step": 5}],
        "logger_kinds": ["audiotrain.train.loggers.tensorboard_logger.TensorBoardLogger"],
    }
    said = []
    assert _reopened_loggers(LoggerConfig(names="csv"), tmp_path, ended, said.append) == []
    assert "names no run of CSVLogger" in said[0]
    ended["logger_kinds"] = ["audiotrain.train.loggers.csv_logger.CSVLogger"]
    (reopened,) = _reopened_loggers(LoggerConfig(names="csv"), tmp_path, ended, said.append)
    assert reopened.version == 7


def test_a_chords_evaluation_asked_for_some_of_the_runs_loggers_reopens_their_runs(tmp_path):
    """`--logger csv` for the evaluation of a run trained with `--logger tensorboard,csv` sent the scores to
    no logger ("names 2 logger runs, not one per logger asked for"), though the checkpoint names the CSV
    logger's run: with each state's kind saved, the loggers asked for take theirs."""
    from audiotrain.recipes.chords.train import _reopened_loggers
    from audiotrain.train.loggers.config import LoggerConfig

    ended = {
        "loggers": [{"version": 7, "step": 5}, {"version": 2, "step": 5}],
        "logger_kinds": [
            "audiotrain.train.loggers.tensorboard_logger.TensorBoardLogger",
            "audiotrain.train.loggers.csv_logger.CSVLogger",
        ],
    }
    said = []
    (reopened,) = _reopened_loggers(LoggerConfig(names="csv"), tmp_path, ended, said.append)
    assert isinstance(reopened, CSVLogger) and reopened.version == 2 and not said


# ---------------------------------------------------------------- log_audio: one call for every logger
def test_log_audio_in_a_validation_hook_reaches_tensorboard_and_mlflow_and_csv_says_it_cannot(tmp_path):
    """A diffusion model's sampled clips, logged from `on_validation_epoch_end` to every logger: only W&B
    had `log_audio` (TensorBoardLogger, MLflowLogger and CSVLogger raised AttributeError), so a loop over
    `self.loggers` needed a branch per logger and MLflow got no audio at all."""
    from audiotrain import Trainer
    from audiotrain.train.loggers import CSVLogger, LoggerWarning, MLflowLogger, TensorBoardLogger

    import mlx.core as mx
    import soundfile as sf
    from tasks import TinyClassifier, make_batches
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    class Samples(TinyClassifier):
        def on_validation_epoch_end(self):
            clip = mx.sin(mx.arange(800) * 0.1) * 0.5
            for logger in self.loggers:
                logger.log_audio(
                    "val/audio", [clip, np.zeros((400, 2), np.float32)], sample_rate=[8000, 4000]
                )

    loggers = [
        TensorBoardLogger(save_dir=tmp_path / "tb"),
        MLflowLogger(save_dir=tmp_path / "mlflow"),
        CSVLogger(save_dir=tmp_path / "csv"),
    ]
    trainer = Trainer(
        max_epochs=2,
        logger=loggers,
        enable_progress_bar=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
    )
    with pytest.warns(
        LoggerWarning, match="CSVLogger cannot store audio, so 'val/audio' is skipped"
    ) as caught:
        trainer.fit(Samples(), make_batches(32), make_batches(16))
    assert sum("cannot store audio" in str(w.message) for w in caught) == 1  # once, not every epoch

    events = EventAccumulator(str(loggers[0].log_dir), size_guidance={"audio": 0}).Reload()
    assert [a.step for a in events.Audio("val/audio")] == [2, 4]
    assert [a.sample_rate for a in events.Audio("val/audio/1")] == [4000, 4000]

    wavs = sorted((tmp_path / "mlflow").rglob("*.wav"))
    assert [w.relative_to(w.parents[2]).as_posix() for w in wavs] == [
        "val/audio/step=2-0.wav",
        "val/audio/step=2-1.wav",
        "val/audio/step=4-0.wav",
        "val/audio/step=4-1.wav",
    ]
    audio, rate = sf.read(wavs[0])
    assert (
        rate == 8000
        and audio.shape == (800,)
        and np.abs(audio - np.sin(np.arange(800) * 0.1) * 0.5).max() < 1e-4
    )


def test_log_audio_takes_torchs_channels_first_clip_on_mlflow(tmp_path):
    """A clip as torch's SummaryWriter.add_audio and librosa give it, (1, frames) or (2, frames): the
    TensorBoardLogger took it, but MLflowLogger wrote it as one frame of 1600 channels: "MLflowLogger
    failed in log_audio (LibsndfileError: ... Format not recognised.)", and nothing was stored."""
    import warnings

    from audiotrain.train.loggers import MLflowLogger

    import soundfile as sf

    logger = MLflowLogger(save_dir=tmp_path / "mlflow")
    mono = np.sin(np.arange(1600) * 0.1).astype(np.float32)[None] * 0.5
    stereo = np.stack([mono[0], -mono[0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (a failed call is a warning)
        logger.log_audio("val/audio", [mono, stereo], step=3, sample_rate=[8000, 8000])
    logger.finalize("success")
    wavs = sorted((tmp_path / "mlflow").rglob("*.wav"))
    assert [w.name for w in wavs] == ["step=3-0.wav", "step=3-1.wav"]
    (one, _), (two, _) = sf.read(wavs[0]), sf.read(wavs[1])
    assert one.shape == (1600,) and np.abs(one - mono[0]).max() < 1e-4
    assert two.shape == (1600, 2) and np.abs(two - stereo.T).max() < 1e-4


def test_mlflow_log_audio_called_per_validation_batch_keeps_every_clip(tmp_path):
    """A clip logged from on_validation_batch_end, one call per batch, all at the validation's step: MLflow
    wrote each as val/audio/step=4-0.wav over the one before, and kept only the last batch's."""
    from audiotrain.train.loggers import MLflowLogger

    import soundfile as sf

    logger = MLflowLogger(save_dir=tmp_path / "mlflow")
    for batch in range(3):
        clip = np.full(800, 0.1 * (batch + 1), np.float32)
        logger.log_audio("val/audio", [clip], step=4, sample_rate=[8000])
    logger.log_audio("val/audio", [np.zeros(800, np.float32)], step=6, sample_rate=[8000])
    logger.finalize("success")
    wavs = sorted((tmp_path / "mlflow").rglob("*.wav"))
    assert [w.name for w in wavs] == ["step=4-0.wav", "step=4-1.wav", "step=4-2.wav", "step=6-0.wav"]
    assert [round(float(sf.read(w)[0][0]), 2) for w in wavs] == [0.1, 0.2, 0.3, 0.0]


def test_log_audio_refuses_a_call_without_one_sample_rate_per_clip(tmp_path):
    from audiotrain.train.loggers import CSVLogger

    with pytest.raises(
        ValueError, match=r"sample_rate must be a list of 2 positive ints \(Hz\), one per clip"
    ):
        CSVLogger(save_dir=tmp_path).log_audio("val/audio", [np.zeros(10), np.zeros(10)], sample_rate=16000)


def test_a_loud_clip_logged_at_every_validation_batch_is_warned_of_once(tmp_path):
    """The warning named the clip's peak, so Python's once-per-line filter let it through at every call: a
    clip logged per validation batch printed it once a batch."""
    import warnings

    from audiotrain.train.loggers import TensorBoardLogger

    logger = TensorBoardLogger(save_dir=tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for step, peak in enumerate((1.5, 2.0, 3.0)):
            logger.log_audio("val/loud", [np.full(400, peak, np.float32)], sample_rate=[8000], step=step)
    logger.finalize("success")
    assert [str(w.message) for w in caught if "peaks at" in str(w.message)] == [
        "TensorBoardLogger.log_audio: clip 0 of 'val/loud' peaks at 1.5, so it is clipped to [-1, 1]; scale "
        "it (clip / peak) to hear it as it is (said once for this clip's key)"
    ]


def test_a_nan_clip_skipped_by_tensorboards_log_audio_leaves_the_next_clip_under_its_own_tag(tmp_path):
    """A NaN clip 0 beside a clean clip 1 was skipped by leaving it out: clip 1 was then written under clip
    0's tag ('val/audio') at that step, and its own tag ('val/audio/1') had no entry there."""
    from audiotrain.train.loggers import LoggerWarning, TensorBoardLogger

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = TensorBoardLogger(save_dir=tmp_path)
    clean = [np.zeros(400, np.float32), np.zeros(400, np.float32)]
    logger.log_audio("val/audio", clean, sample_rate=[8000, 4000], step=1)
    with pytest.warns(LoggerWarning, match="clip 0 of 'val/audio' holds 400 NaN"):
        logger.log_audio(
            "val/audio", [np.full(400, np.nan, np.float32), clean[1]], sample_rate=[8000, 4000], step=2
        )
    logger.finalize("success")
    events = EventAccumulator(str(logger.log_dir), size_guidance={"audio": 0}).Reload()
    assert [(a.step, a.sample_rate) for a in events.Audio("val/audio")] == [(1, 8000)]
    assert [(a.step, a.sample_rate) for a in events.Audio("val/audio/1")] == [(1, 4000), (2, 4000)]


def test_log_audio_refuses_integer_pcm_and_says_what_it_does_with_nan_and_loud_clips(tmp_path):
    """MLflow's WAV of an int16 clip (soundfile's dtype="int16": 1000) was a full-scale square, a NaN
    clip (a diverged sampler) a full-scale -1, and a clip at 3.0 was cut to 1.0: all without a word."""
    from audiotrain.train.loggers import LoggerWarning, MLflowLogger

    import soundfile as sf

    logger = MLflowLogger(save_dir=tmp_path / "mlflow")
    with pytest.raises(ValueError, match=r"clip 0 holds int16 samples.*floats in \[-1, 1\].*/ 32768"):
        logger.log_audio("val/pcm", [np.full(800, 1000, np.int16)], sample_rate=[8000])
    quiet = np.full(800, 0.25, np.float32)
    with pytest.warns(LoggerWarning, match=r"clip 0 of 'val/nan' holds 800 NaN or infinite samples.*skipped"):
        logger.log_audio("val/nan", [np.full(800, np.nan, np.float32), quiet], sample_rate=[8000, 8000])
    with pytest.warns(LoggerWarning, match=r"clip 0 of 'val/loud' peaks at 3(\.0)?, .*clipped to \[-1, 1\]"):
        logger.log_audio("val/loud", [np.full(800, 3.0, np.float32)], sample_rate=[8000])
    logger.finalize("success")
    wavs = sorted(p.relative_to(p.parents[2]).as_posix() for p in (tmp_path / "mlflow").rglob("*.wav"))
    assert wavs == ["val/loud/step=0-0.wav", "val/nan/step=0-0.wav"], wavs
    kept, _ = sf.read(next((tmp_path / "mlflow").rglob("val/nan/*.wav")))
    assert np.allclose(kept, 0.25, atol=1e-4)  # (the finite clip, first at its step)


def test_wandb_log_model_metadata_holds_a_score_that_is_not_finite_as_text(tmp_path, quiet_wandb):
    """A diverged run's NaN score as a float made W&B refuse the artifact ("Out of range float values are not
    JSON compliant": the checkpoint was not uploaded); as its text it is kept and the artifact goes up."""
    w = WandbLogger(project="audiotrain-tests", save_dir=tmp_path, offline=True, settings=quiet_wandb)
    uploads = []
    w._upload = lambda path, name, kind, **kwargs: uploads.append(kwargs["metadata"]["score"])
    for score in (float("nan"), float("inf"), 0.5):

        class Scored:  # what _log_checkpoint reads of a ModelCheckpoint
            best_k_models = {str(tmp_path / "best"): score}
            monitor, mode = "val_loss", "min"

        w._log_checkpoint(tmp_path / "best", True, Scored())
    w.finish()
    assert uploads == ["nan", "inf", 0.5]
    json.dumps(uploads, allow_nan=False)  # (W&B's check)


@pytest.mark.parametrize(
    "status, stored",
    [("finished", "FINISHED"), ("FINISHED", "FINISHED"), ("FAILED", "FAILED"), ("KILLED", "KILLED")],
)
def test_mlflow_finalize_takes_lightnings_finished_and_mlflows_own_statuses(mlflow_store, status, stored):
    """Lightning 2.6.6's MLFlowLogger.finalize maps "finished" (as "success") to FINISHED and passes MLflow's
    own statuses through (measured: each ends the run with that status); audiotrain refused them."""
    from mlflow.tracking import MlflowClient

    logger = MLflowLogger(experiment_name="statuses", tracking_uri=mlflow_store[1])
    logger.log_metrics({"loss": 1.0}, step=1)
    logger.finalize(status)
    assert MlflowClient(tracking_uri=mlflow_store[1]).get_run(logger.version).info.status == stored
    with pytest.raises(ValueError, match="finalize status must be one of"):
        logger.finalize("bogus")


def test_csv_validation_rows_carry_the_epoch_as_lightnings_do(tmp_path):
    """Lightning 2.6.6 (measured: CSVLogger, log_every_n_steps=2, 6 batches an epoch, a module logging
    `train_loss` on_step and `val_loss` in validation_step): every row has `epoch`, the validation's
    `0,,5,,0.43` too, so `metrics.csv` grouped by epoch gives each epoch's validation. Here a validation
    row had no epoch, and a fit logging nothing `on_epoch` wrote no `epoch` column at all."""
    from audiotrain import Trainer

    from tasks import TinyClassifier, make_batches

    class LogsOnStep(TinyClassifier):
        def training_step(self, batch, batch_idx):
            loss, _ = self.compute_loss(batch)
            self.log("train_loss", loss)  # (on_step only: no epoch-end row)
            return loss

        def validation_step(self, batch, batch_idx):
            self.log("val_loss", self.compute_loss(batch)[0])

    logger = CSVLogger(tmp_path, name=None)
    trainer = Trainer(
        max_epochs=2,
        default_root_dir=tmp_path,
        logger=logger,
        log_every_n_steps=2,
        enable_progress_bar=False,
        enable_checkpointing=False,
        compile=False,
    )
    trainer.fit(LogsOnStep(), make_batches(64), make_batches(16, seed=1))
    rows = read_csv(logger.metrics_file)[1]
    assert [r.get("epoch") for r in rows if r["val_loss"]] == ["0", "1"]
