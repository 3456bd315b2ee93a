"""The recipes' --logger from the user's side: each logger's data and the run's artifacts, read back with the
loggers' own tools."""

import warnings

from audiotrain.recipes.chords import cli as chords
from audiotrain.recipes.chords.config import TrainingConfig
from audiotrain.recipes.clap import cli as clap
from audiotrain.train.checkpoint import read_state
from audiotrain.train.loggers import LoggerWarning

import pytest
from logger_readers import (
    read_hparams_plugin,
    read_mlflow_run_in_a_fresh_process,
    read_scalars,
    wandb_artifacts,
    wandb_glob,
)


@pytest.fixture
def logger_env(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb-data"))  # W&B stages offline artifacts here
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONSOLE", "off")


@pytest.fixture(scope="module")
def chord_cache(tmp_path_factory):
    """One demo-song and feature cache for this module's chord runs: what they check is their loggers', not
    the making of the songs, so each need not generate and analyse the same songs again."""
    return tmp_path_factory.mktemp("chord_cache")


@pytest.fixture(scope="module")
def clap_cache(tmp_path_factory):
    """One demo-clip folder for this module's CLAP runs (as chord_cache for the chord runs)."""
    return tmp_path_factory.mktemp("clap_cache")


@pytest.fixture(scope="module")
def migrated_mlflow_store(tmp_path_factory):
    """An empty MLflow SQLite store with its tables made: MLflow makes a new store's tables by running each of
    its schema migrations, seconds of each test that needs a store only to read one run's status back. Built
    once for the xdist workers (built_once); tests take a copy (`mlflow_store`)."""
    from built_once import built_once

    def build(root):
        from mlflow.tracking import MlflowClient

        MlflowClient(f"sqlite:///{root / 'mlflow.db'}").search_experiments()  # (makes the tables)

    root, _ = built_once(tmp_path_factory, "migrated_mlflow_store", build)
    return root / "mlflow.db"


@pytest.fixture
def mlflow_store(migrated_mlflow_store, tmp_path):
    """A test's own copy of the migrated store, for --logger.tracking_uri (its artifacts go in mlruns/ beside
    it, as a run folder's own store keeps them)."""
    import shutil

    store = tmp_path / "store" / "mlflow.db"
    store.parent.mkdir()
    shutil.copyfile(migrated_mlflow_store, store)
    return store


def mlflow_run_of(run_dir, experiment):
    """The one MLflow run in the run folder's own store, as MLflow's client reads it in a fresh process."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{run_dir / 'mlflow.db'}"
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return read_mlflow_run_in_a_fresh_process(uri, run.info.run_id)


def mlflow_status_of(store, experiment):
    """The status of the one MLflow run in the SQLite store `store` (a database file), as MLflow's client
    reads it from the database (in this process: a fresh one costs seconds of importing mlflow, for one field
    the run wrote to the store before the recipe returned)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{store}")
    (run,) = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return run.info.status


def test_chord_demo_writes_every_loggers_data_and_the_artifacts(tmp_path, chord_cache, logger_env, capsys):
    run_dir = tmp_path / "run"
    argv = ["--preset", "quick_test", "--num_epochs", "2", "--data.cache_dir", str(chord_cache),
            "--run_dir", str(run_dir), "--logger", "csv,tensorboard,mlflow,wandb", "--logger.offline", "true",
            "--logger.project", "chords-e2e"]  # fmt: skip
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        assert chords.main(argv) == 0
    # The Trainer's warning of epochs shorter than log_every_n_steps named a setting the recipe has not
    # (its flag is --log_every) and values hooks log per step, which the recipe has none of.
    assert not [w for w in warned if "fewer than the logging interval" in str(w.message)]
    printed = capsys.readouterr().out
    assert f"mlflow ui --backend-store-uri sqlite:///{run_dir / 'mlflow.db'}" in printed

    (csv_dir,) = (run_dir / "csv").iterdir()
    header = (csv_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train_loss", "val_loss", "learning_rate", "test_majmin"} <= set(header)
    tb_dir = run_dir / "tensorboard" / "version_0"
    scalars = read_scalars(tb_dir)
    assert {"train_loss", "val_loss", "test_majmin"} <= scalars.keys()
    # The held-out scores are logged at the run's last step, where its curves end, not at step 0.
    last_step = read_state(run_dir / "checkpoints" / "last")["progress"]["global_step"]
    assert [step for step, _ in scalars["test_majmin"]] == [last_step] and last_step > 0
    hparams = read_hparams_plugin(tb_dir)["_hparams_/session_start_info"].session_start_info.hparams
    assert hparams["trainer/max_epochs"].number_value == 2  # the Trainer's settings, and the recipe's:
    assert hparams["learning_rate"].number_value == 2e-3 and hparams["model/d_model"].number_value == 32
    assert hparams["logger/names"].string_value == "csv,tensorboard,mlflow,wandb"

    run = mlflow_run_of(run_dir, "chords-e2e")
    assert run["status"] == "FINISHED" and run["name"] == "run"
    # A store shared by many runs (--logger.tracking_uri) leads back to each run's folder and build.
    assert run["tags"]["run_dir"] == str(run_dir.resolve()) and run["tags"]["audiotrain_version"]
    assert {"val_loss", "test_majmin"} <= run["metrics"].keys()
    best = run_dir / "checkpoints" / "best"
    checkpoint = {f"checkpoints/best/{p.name}" for p in best.iterdir()}
    outputs = {
        "training_curves.png",
        "history.json",
        "evaluation/scores.json",
        "evaluation/confusion_matrix.png",
    }
    assert checkpoint | outputs <= set(run["artifacts"])

    (wandb_dir,) = wandb_glob(str(run_dir / "wandb" / "offline-run-*"))  # one run for the whole command
    uploads = {name: (kind, aliases, files) for name, kind, aliases, files in wandb_artifacts(wandb_dir)}
    model = next(name for name in uploads if name.startswith("model-"))
    assert uploads[model][:2] == ("model", ["best", "latest"])
    assert uploads[model][2] == {p.name: p.read_bytes() for p in best.iterdir()}
    assert {"training_curves.png", "history.json", "evaluation"} <= uploads.keys()
    assert "scores.json" in uploads["evaluation"][2]


def test_clap_demo_sends_the_plots_and_the_hugging_face_export(tmp_path, clap_cache, logger_env, capsys):
    out = tmp_path / "run"
    argv = ["--preset", "quick_test", "--out", str(out), "--demo.folder", str(clap_cache),
            "--logger", "mlflow,tensorboard", "--logger.experiment", "clap-e2e"]  # fmt: skip
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        assert clap.main(argv) == 0
    assert not [w for w in warned if "fewer than the logging interval" in str(w.message)]
    run = mlflow_run_of(out, "clap-e2e")
    assert run["tags"]["run_dir"] == str(out.resolve())
    exported = {
        f"hf_model/{p.relative_to(out / 'hf_model').as_posix()}" for p in (out / "hf_model").rglob("*")
    }
    plots = {f"plots/{p.name}" for p in (out / "plots").iterdir()}
    assert {p for p in exported if "." in p.rsplit("/", 1)[-1]} <= set(run["artifacts"])
    assert plots <= set(run["artifacts"]) and "retrieval.json" in run["artifacts"]
    assert any(a.startswith("checkpoints/") for a in run["artifacts"])  # the best checkpoint
    assert any(k.startswith("retrieval_after/") for k in run["metrics"])
    assert any(k.startswith("retrieval_before/") for k in run["metrics"])
    # Before and after are logged at the run's last step, where a curve of them belongs, not at step 0.
    last_step = read_state(out / "checkpoints" / "last")["progress"]["global_step"]
    scalars = read_scalars(out / "tensorboard" / "version_0")
    scored = {
        tag: points
        for tag, points in scalars.items()
        if tag.startswith(("retrieval_before/", "retrieval_after/"))
    }
    assert (
        scored and {step for points in scored.values() for step, _ in points} == {last_step} and last_step > 0
    )


def test_logger_settings_come_from_flags_and_config_files_and_are_checked(tmp_path, capsys):
    from audiotrain.recipes.config_cli import load_config_file

    config_file = tmp_path / "run.yaml"
    config_file.write_text(
        "logger:\n  names: tensorboard,mlflow\n  tracking_uri: http://mlflow.example:5000\n"
    )
    config = load_config_file(TrainingConfig(), config_file)
    assert config.logger.selected() == ["tensorboard", "mlflow"]
    assert config.logger.tracking_uri == "http://mlflow.example:5000"
    status = chords.main(
        ["--logger", "tensorbord", "--run_dir", str(tmp_path / "r")]
    )  # a bad setting: one error line, before anything runs
    assert status == 2
    err = capsys.readouterr().err
    assert "unknown logger 'tensorbord'" in err and "did you mean 'tensorboard'" in err
    assert not (tmp_path / "r").exists()


def test_a_resumed_chord_run_continues_the_same_logger_runs(tmp_path, chord_cache, logger_env, capsys):
    from mlflow.tracking import MlflowClient

    run_dir = tmp_path / "run"
    argv = ["--preset", "quick_test", "--data.cache_dir", str(chord_cache), "--run_dir", str(run_dir),
            "--logger", "csv,mlflow", "--logger.experiment", "resume-e2e"]  # fmt: skip
    assert chords.main(argv) == 0
    last = run_dir / "checkpoints" / "last"
    # MLflow keeps a param's first value: the longer schedule is said once, and logging goes on.
    with pytest.warns(LoggerWarning, match=r"num_epochs \(old '1', new '2'\)"):
        assert chords.main([*argv, "--num_epochs", "2", "--resume", str(last)]) == 0
    capsys.readouterr()
    assert [p.name for p in (run_dir / "csv").iterdir()] == ["version_0"]
    client = MlflowClient(f"sqlite:///{run_dir / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("resume-e2e").experiment_id])
    steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "val_loss"))
    assert len(steps) == 2 and steps[0] < steps[1]  # one per epoch, both in the one run


@pytest.fixture
def unreachable_mlflow(monkeypatch):
    """An MLflow server address where nothing listens: MLflowLogger fails to start within seconds, offline."""
    import socket

    for var in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(var, raising=False)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.timeout(300)  # (the first `import mlflow` on a loaded machine)
def test_a_required_logger_that_cannot_start_stops_either_recipe_before_training(
    tmp_path, unreachable_mlflow, capsys
):
    """A logger that could not start was a warning and the run trained unlogged with exit status 0, with no
    way to ask otherwise: --logger.required makes it an error naming the logger and why, before training."""
    chord_run = tmp_path / "chords"
    logger = ["--logger", "mlflow", "--logger.tracking_uri", unreachable_mlflow, "--logger.required", "true"]
    from test_recipe_chords import TINY_FLAGS

    argv = [*TINY_FLAGS, "--data.cache_dir", str(tmp_path / "cache"), "--run_dir", str(chord_run), *logger]
    capsys.readouterr()
    assert chords.main(argv) == 2
    captured = capsys.readouterr()
    assert "error: MLflowLogger could not start its run (" in captured.err, captured.err
    assert "it is required (required=True; the recipes' --logger.required)" in captured.err
    assert "trained" not in captured.out and not (chord_run / "checkpoints").exists()
    assert not chord_run.exists() or not any(chord_run.iterdir())  # the same command can run again there
    clap_run = tmp_path / "clap"
    argv = ["--preset", "quick_test", "--out", str(clap_run), "--demo.folder", str(tmp_path / "clap_cache"),
            "--train.processes", "1", *logger]  # fmt: skip
    assert clap.main(argv) == 2
    err = capsys.readouterr().err
    assert "error: MLflowLogger could not start its run (" in err and "--logger.required" in err, err
    assert not (clap_run / "checkpoints").exists()
    # It left config.json, data_report.txt and demo_init/, and the same command was then refused for them.
    assert not clap_run.exists(), sorted(p.name for p in clap_run.iterdir())
    clap_run.mkdir()
    (clap_run / "notes.txt").write_text("mine")  # a folder of the user's: what is there stays
    assert clap.main(argv) == 2
    assert sorted(p.name for p in clap_run.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize(
    "main, folder_flag", [(chords.main, "--run_dir"), (clap.main, "--out")], ids=["chords", "clap"]
)
def test_a_wandb_setting_without_wandb_among_the_loggers_is_refused_by_its_flag(
    tmp_path, capsys, main, folder_flag
):
    # --logger.offline is W&B's alone: with only csv it did nothing, without a word.
    status = main(["--logger", "csv", "--logger.offline", "true", folder_flag, str(tmp_path / "r")])
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("error: logger.offline (--logger.offline) is a W&B setting")
    assert "Traceback" not in err
    assert "add wandb to --logger" in err
    assert not (tmp_path / "r").exists()


def test_a_chord_run_that_fails_after_training_leaves_its_logger_runs_failed(
    tmp_path, chord_cache, logger_env, mlflow_store, capsys
):
    """A sweep's trial that diverged trained to the end and then failed in its held-out evaluation: its MLflow
    run stayed FINISHED (as `fit` had closed it) and its W&B run was finished with exit code 0, so a sweep
    that filters runs by status counted the failed trial as a complete one, without its test scores."""
    from logger_readers import wait_for_exit_record

    run_dir = tmp_path / "run"
    argv = ["--preset", "quick_test", "--num_epochs", "1", "--data.cache_dir", str(chord_cache),
            "--run_dir", str(run_dir), "--logger", "csv,tensorboard,mlflow,wandb", "--logger.offline", "true",
            "--logger.project", "chords-failed", "--learning_rate", "1e30", "--processes", "1",
            "--logger.tracking_uri", f"sqlite:///{mlflow_store}"]  # fmt: skip
    assert chords.main(argv) != 0
    assert "NaN or infinite posteriors" in capsys.readouterr().err
    assert mlflow_status_of(mlflow_store, "chords-failed") == "FAILED"
    (records,) = wandb_glob(run_dir / "wandb" / "offline-run-*" / "run-*.wandb")
    (exit_record,) = [r.exit for r in wait_for_exit_record(records) if r.WhichOneof("record_type") == "exit"]
    assert exit_record.exit_code == 1


def test_a_clap_run_that_fails_after_training_leaves_its_mlflow_run_failed(
    tmp_path, clap_cache, logger_env, mlflow_store, monkeypatch
):
    """As a chord run's: an error once training had ended (here its export) left the MLflow run FINISHED."""
    from audiotrain.recipes.clap import train as clap_train

    def export_fails(*args, **kwargs):
        raise RuntimeError("the export failed")

    monkeypatch.setattr(clap_train, "_export", export_fails)
    out = tmp_path / "run"
    argv = ["--preset", "quick_test", "--out", str(out), "--demo.folder", str(clap_cache),
            "--logger", "mlflow", "--logger.experiment", "clap-failed",
            "--logger.tracking_uri", f"sqlite:///{mlflow_store}"]  # fmt: skip
    with pytest.raises(RuntimeError, match="the export failed"):  # (not an error main knows: it goes on)
        clap.main(argv)
    assert mlflow_status_of(mlflow_store, "clap-failed") == "FAILED"


def test_a_chord_run_stopped_after_training_leaves_its_mlflow_run_killed(
    tmp_path, chord_cache, logger_env, mlflow_store, monkeypatch
):
    """Ctrl-C in the held-out evaluation, once training had ended: the run is no failure, but neither is it
    complete (no test scores); it stayed FINISHED, as `fit` had closed it, and a sweep counted it complete."""
    from audiotrain.recipes.chords import train as chords_train

    def evaluation_stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(chords_train, "_evaluate_held_out", evaluation_stopped)
    run_dir = tmp_path / "run"
    argv = ["--preset", "quick_test", "--num_epochs", "1", "--data.cache_dir", str(chord_cache),
            "--run_dir", str(run_dir), "--logger", "mlflow",
            "--logger.project", "chords-stopped",
            "--logger.tracking_uri", f"sqlite:///{mlflow_store}"]  # fmt: skip
    assert chords.main(argv) != 0
    assert mlflow_status_of(mlflow_store, "chords-stopped") == "KILLED"


def test_a_clap_run_stopped_after_training_leaves_its_mlflow_run_killed(
    tmp_path, clap_cache, logger_env, mlflow_store, monkeypatch
):
    """As a chord run's: Ctrl-C in the export, once training had ended, left the MLflow run FINISHED."""
    from audiotrain.recipes.clap import train as clap_train

    def export_stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(clap_train, "_export", export_stopped)
    out = tmp_path / "run"
    argv = ["--preset", "quick_test", "--out", str(out), "--demo.folder", str(clap_cache),
            "--logger", "mlflow", "--logger.experiment", "clap-stopped",
            "--logger.tracking_uri", f"sqlite:///{mlflow_store}"]  # fmt: skip
    clap.main(argv)
    assert mlflow_status_of(mlflow_store, "clap-stopped") == "KILLED"
