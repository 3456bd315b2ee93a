"""Loggers: real backends written locally and read back, resume, and failures that never stop training."""

import csv
import glob
import json
import os
import struct
import subprocess
import sys
import time
import types
import warnings
from pathlib import Path

import audiotrain  # noqa: F401
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

# ------------------------------------------------------------------ W&B (one real offline run for the module)


def read_wandb_records(path):
    """Records of a W&B ``.wandb`` transaction log (LevelDB log format: 32 KiB blocks of CRC'd chunks)."""
    from wandb.proto import wandb_internal_pb2 as pb

    with open(path, "rb") as f:
        data = f.read()
    assert data[:4] == b":W&B"
    pos, block, partial = 7, 32768, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7]) if left >= 7 else (0, 0, 0)
        if left < 7 or (length == 0 and kind == 0):
            pos += left  # block trailer / padding
            continue
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        partial = chunk if kind in (1, 2) else partial + chunk
        if kind in (1, 4):  # FULL or LAST
            record = pb.Record()
            record.ParseFromString(partial)
            yield record


def wait_for_exit_record(path, timeout=30.0):
    """W&B's service writes the offline log asynchronously: finish() can return before it is flushed."""
    deadline = time.monotonic() + timeout
    while True:
        records = list(read_wandb_records(path))
        if "exit" in [r.WhichOneof("record_type") for r in records] or time.monotonic() > deadline:
            return records
        time.sleep(0.1)


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
    logger.finalize("success")
    return logger, state, save_dir


def test_wandb_offline_run_holds_the_metrics_and_config(wandb_run):
    logger, state, save_dir = wandb_run
    (path,) = glob.glob(str(save_dir / "wandb" / "offline-run-*" / f"run-{state['run_id']}.wandb"))
    assert logger.failures == 0
    history, config = [], {}
    records = wait_for_exit_record(path)
    for record in records:
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history.append(
                {
                    item.key or "/".join(item.nested_key): json.loads(item.value_json)
                    for item in record.history.item
                }
            )
        elif kind in ("run", "config"):
            updates = record.run.config.update if kind == "run" else record.config.update
            config.update({u.key: json.loads(u.value_json) for u in updates})
    assert [(h["trainer/global_step"], h["train_loss"]) for h in history] == [
        (0, 1.0),
        (50, 1 / 51),
        (100, 1 / 101),
    ]
    assert all(h["lr"] == 0.5 for h in history)
    assert config["model/width"] == 8 and config["lr"] == 1e-3
    assert config["schedule/name"] == "warmup_cosine" and config["schedule/total_steps"] == 100
    assert logger.version == state["run_id"]


def test_wandb_name_and_log_dir_stay_readable_after_finalize(wandb_run):
    logger, state, save_dir = wandb_run
    (run_dir,) = glob.glob(str(save_dir / "wandb" / "offline-run-*"))
    assert logger.name == "offline-run" and logger.log_dir == Path(run_dir)
    assert logger.version == state["run_id"]


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


def test_wandb_not_logged_in_warns_once_and_training_goes_on(monkeypatch):
    import wandb

    def refuse(**kwargs):
        raise wandb.errors.UsageError("api_key not configured (no-tty). call wandb.login(key=[your_api_key])")

    monkeypatch.setattr(wandb, "init", refuse)
    logger = WandbLogger(project="p")
    logger.log_hyperparams({"lr": 1})  # kept until the run starts (a resumed fit loads its id first)
    with pytest.warns(
        LoggerWarning, match=r"WandbLogger could not start its run \(UsageError: api_key not configured"
    ):
        logger.start()  # what Trainer.fit does once a checkpoint is loaded
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for step in range(3):
            logger.log_metrics({"loss": 1.0}, step=step)
        logger.finalize("failed")
    assert logger.failures == 1 and logger.experiment is None


# ------------------------------------------------------------------ TensorBoard


def read_scalars(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


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


# ------------------------------------------------------------------ MLflow


def test_mlflow_local_store_and_resume(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = (tmp_path / "mlruns").as_uri()
    logger = MLflowLogger(experiment_name="chords", run_name="run-1", tracking_uri=uri)
    logger.log_hyperparams({"optimizer": {"lr": 0.001, "name": "adamw"}})
    logger.log_metrics({"train_loss": 2.0, "val_loss@1": 1.5}, step=1)
    state = logger.state_dict()
    logger.finalize("interrupted")

    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(state["run_id"])
    assert run.info.status == "KILLED" and run.info.run_name == "run-1"
    assert run.data.params == {"optimizer/lr": "0.001", "optimizer/name": "adamw"}
    assert logger.save_dir == tmp_path / "mlruns" and logger.log_dir.is_dir()

    resumed = MLflowLogger(experiment_name="chords", tracking_uri=uri)
    resumed.load_state_dict(state)
    resumed.log_metrics({"train_loss": 1.0}, step=2)
    resumed.finalize("success")
    assert resumed.version == state["run_id"]
    history = client.get_metric_history(state["run_id"], "train_loss")
    assert sorted((m.step, m.value) for m in history) == [(1, 2.0), (2, 1.0)]
    assert [m.value for m in client.get_metric_history(state["run_id"], "val_loss_1")] == [1.5]
    assert client.get_run(state["run_id"]).info.status == "FINISHED"


def test_mlflow_resume_with_other_trainer_flags_keeps_the_first_params_and_goes_on(tmp_path):
    from audiotrain import Trainer

    from mlflow.tracking import MlflowClient
    from tasks import TinyClassifier, make_batches

    uri = (tmp_path / "mlruns").as_uri()

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
    (message,) = [str(w.message) for w in record]  # one warning naming every changed param
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


@pytest.mark.timeout(60)
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
    assert logger.failures == 1 and logger.experiment is None
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ  # only bounded for the connection check


# ------------------------------------------------------------------ CSV


def read_csv(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


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
        callbacks=[LearningRateMonitor()],
        enable_progress_bar=False,
        enable_checkpointing=False,
        compile=False,
    )
    trainer.fit(TinyClassifier(), make_batches(64), make_batches(16, seed=1))  # 4 steps per epoch
    assert logger.log_dir == tmp_path / "version_0"
    rows = read_csv(logger.metrics_file)[1]
    # One row per logging step: learning rate, training interval, validation and (at an epoch's last
    # step) the epoch means, whose `_epoch` names keep them apart from the interval's.
    assert [(r["step"], r["epoch"]) for r in rows] == [("2", ""), ("4", "0.0"), ("6", ""), ("8", "1.0")]
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
    resumed.log_metrics({"loss": 2.0}, step=2)
    assert [(r["step"], r["loss"]) for r in read_csv(resumed.metrics_file)[1]] == [("1", "1.0"), ("2", "2.0")]


def test_unwritable_folder_warns_once_and_disables(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    logger = CSVLogger(blocker)
    with pytest.warns(LoggerWarning, match="CSVLogger could not start its run .*it is disabled"):
        logger.log_metrics({"loss": 1.0}, step=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        logger.log_metrics({"loss": 1.0}, step=1)
        logger.finalize("failed")


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
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        logger.log_metrics({"top_1": 0.2, "top@1": 0.6, "top#1": 0.8, "top5": 0.9}, step=2)
        logger.finalize("success")
    assert logger.failures == 0


def test_bad_arguments_are_explained(tmp_path):
    logger = CSVLogger(tmp_path)
    with pytest.raises(TypeError, match="metric 'loss' must be a number or a scalar array"):
        logger.log_metrics({"loss": "high"}, step=0)
    with pytest.raises(ValueError, match="step must be an int >= 0, got -1"):
        logger.log_metrics({"loss": 1.0}, step=-1)
    with pytest.raises(ValueError, match="finalize status must be one of"):
        logger.finalize("done")


def test_flatten_params_expands_nested_dicts_dataclasses_and_schedules():
    flat = flatten_params({"a": {"b": 1, "c": {"d": np.float32(2.0)}}, "s": WarmupCosineScheduler(1.0, 1, 2)})
    assert flat["a/b"] == 1 and flat["a/c/d"] == 2.0 and isinstance(flat["a/c/d"], float)
    assert flat["s/name"] == "warmup_cosine" and flat["s/warmup_steps"] == 1


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


def test_importing_the_loggers_does_not_import_backends():
    code = (
        "import audiotrain.train.loggers, sys; "
        "print([m for m in ('wandb', 'mlflow', 'tensorboardX', 'tensorboard') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
