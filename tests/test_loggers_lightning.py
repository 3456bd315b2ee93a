"""Loggers as a Lightning user meets them: a fresh fit given a used version folder, Lightning's keyword
arguments (refused by name with what to use instead where there is no counterpart), and warnings on the
recipes' command line."""

import argparse
import json
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

from audiotrain import Trainer
from audiotrain.train.callback import Callback
from audiotrain.train.loggers import CSVLogger, Logger, LoggerWarning, TensorBoardLogger, WandbLogger

import pytest
from child_processes import child_env
from logger_readers import read_scalars
from tasks import TinyClassifier, make_batches, quiet_trainer

# ------------------------------------------------------------------ a fresh fit and a used version folder


def fit(tmp_path, logger, epochs=1, callbacks=None, **fit_kwargs):
    trainer = Trainer(
        max_epochs=epochs,
        default_root_dir=tmp_path,
        logger=logger,
        log_every_n_steps=2,
        enable_progress_bar=False,
        compile=False,
        callbacks=callbacks,
    )
    trainer.fit(TinyClassifier(), make_batches(32), **fit_kwargs)  # 2 steps per epoch
    return trainer


def files_in(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.mark.parametrize("cls", [CSVLogger, TensorBoardLogger])
def test_a_fresh_fit_refuses_a_version_folder_that_another_run_wrote(tmp_path, cls):
    """Two fresh fits given the same version= used to go into one folder: the second run's rows after the
    first's in one metrics.csv (steps starting over), a second event file with every tag's steps twice, and
    the first run's hparams.yaml replaced. Now the second fit is refused before it writes anything."""
    fit(tmp_path, cls(tmp_path, name="logs", version=0))
    folder = tmp_path / "logs" / "version_0"
    before = files_in(folder)
    with pytest.raises(FileExistsError) as refused:
        fit(tmp_path / "second", cls(tmp_path, name="logs", version=0))
    message = str(refused.value)
    assert f"{cls.__name__}: {folder} already holds another run's logs (" in message
    assert "hparams.yaml" in message and "ckpt_path=" in message and "version=None" in message
    assert files_in(folder) == before


@pytest.mark.parametrize("cls", [CSVLogger, TensorBoardLogger])
def test_a_logger_reused_by_a_new_trainers_fresh_fit_warns_that_it_goes_on_in_the_first_run(tmp_path, cls):
    """A sweep's logger made once before its loop: every trial's new Trainer wrote into the first one's
    version folder (all trials' rows in one metrics.csv, steps starting over, or their event files in one
    TensorBoard run; hparams.yaml the last trial's) without a word. One logger is one run, as in Lightning
    (a second stage's new Trainer may go on in it on purpose), so it is said, not refused; the logger's own
    Trainer fitted again is its run and says nothing."""
    logger = cls(tmp_path, name="logs")
    first = fit(tmp_path, logger)
    folder = tmp_path / "logs" / "version_0"
    first.max_epochs = 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", LoggerWarning)
        first.fit(first.lightning_module, make_batches(32))  # (its own Trainer again: no word)
    with pytest.warns(LoggerWarning, match="already logged another Trainer's fit") as caught:
        fit(tmp_path / "second", logger)
    message = str(caught[0].message)
    assert f"{cls.__name__}: this logger already logged another Trainer's fit, in {folder}" in message
    assert "a logger of its own" in message and caught[0].filename == __file__
    assert logger.log_dir == folder and not (tmp_path / "logs" / "version_1").exists()


@pytest.mark.parametrize("cls", [CSVLogger, TensorBoardLogger])
def test_two_fits_started_at_once_with_one_version_refuse_the_second(tmp_path, monkeypatch, cls):
    """Both found the version folder empty (each checked before either wrote) and both trained, their rows
    interleaved in one metrics.csv (or one event file each, every step twice) and one run's hparams.yaml."""
    start_loggers, second = Trainer._start_loggers, []

    def the_other_fit_checks_meanwhile(trainer, module):
        if not second:  # the first fit has checked its folder, and writes nothing yet
            second.append(None)
            try:
                fit(tmp_path / "second", cls(tmp_path, name="", version="exp"))
            except FileExistsError as refused:
                second[0] = refused
        return start_loggers(trainer, module)

    monkeypatch.setattr(Trainer, "_start_loggers", the_other_fit_checks_meanwhile)
    first = fit(tmp_path, cls(tmp_path, name="", version="exp"))
    assert f"{tmp_path / 'exp'} already holds another run's logs (hparams.yaml)" in str(second[0])
    assert first.logger.log_dir == tmp_path / "exp"
    if cls is CSVLogger:
        steps = [line.split(",")[0] for line in first.logger.metrics_file.read_text().splitlines()[1:]]
        assert steps == ["2"]  # the first run's one logging step, once
    else:
        assert len([p for p in (tmp_path / "exp").iterdir() if "tfevents" in p.name]) == 1


def test_a_fit_one_of_whose_loggers_is_refused_leaves_the_others_folder_as_it_was(tmp_path):
    fit(tmp_path, TensorBoardLogger(tmp_path, name="tb", version=0))
    with pytest.raises(FileExistsError, match="already holds another run's logs"):
        fit(tmp_path, [CSVLogger(tmp_path, name="csv", version="a"), TensorBoardLogger(tmp_path, "tb", 0)])
    assert not (tmp_path / "csv" / "a").exists()
    fit(tmp_path, CSVLogger(tmp_path, name="csv", version="a"))  # (not refused: nothing of a run is there)


def test_a_csv_and_a_tensorboard_logger_of_one_fit_share_the_version_folder_given_to_both(tmp_path):
    """As Lightning writes them: one folder with metrics.csv, the event file and one hparams.yaml. The CSV
    logger's claim of the folder (its hparams.yaml) was taken for another run's logs, and the fit refused."""
    folder = tmp_path / "logs" / "exp" / "run1"
    loggers = [
        CSVLogger(tmp_path / "logs", "exp", "run1"),
        TensorBoardLogger(tmp_path / "logs", "exp", "run1"),
    ]
    fit(tmp_path, loggers)
    names = sorted(p.name for p in folder.iterdir())
    assert "metrics.csv" in names and "hparams.yaml" in names and any("tfevents" in n for n in names)
    assert "max_epochs" in (folder / "hparams.yaml").read_text()
    # Another fit given that version is still refused, with its two loggers as with one.
    again = [CSVLogger(tmp_path / "logs", "exp", "run1"), TensorBoardLogger(tmp_path / "logs", "exp", "run1")]
    with pytest.raises(FileExistsError, match="already holds another run's logs"):
        fit(tmp_path, again)
    # Two loggers of one kind would write one metrics.csv (or event file) over the other's.
    twins = [CSVLogger(tmp_path / "twins", "exp", "a"), CSVLogger(tmp_path / "twins", "exp", "a")]
    with pytest.raises(ValueError, match="two CSVLoggers of this Trainer write to .*different versions"):
        fit(tmp_path, twins)
    assert not (tmp_path / "twins" / "exp" / "a").exists()  # (the first one's claim given up)


def test_a_csv_and_a_tensorboard_logger_of_one_fit_left_to_number_themselves_share_one_version(tmp_path):
    """Each claimed the next free version at its start: one fit's metrics.csv went in version_0 and its event
    files in version_1, and the next fit's in version_2 and version_3. Now one fit is one version, as a
    version given to both is; two loggers of one kind still take a version each."""
    for round_ in range(2):
        loggers = [CSVLogger(tmp_path, name="al"), TensorBoardLogger(tmp_path, name="al")]
        fit(tmp_path, loggers)
        folder = tmp_path / "al" / f"version_{round_}"
        assert [lg.log_dir for lg in loggers] == [folder, folder]
        names = sorted(p.name for p in folder.iterdir())
        assert "metrics.csv" in names and any("tfevents" in n for n in names)
    assert sorted(p.name for p in (tmp_path / "al").iterdir()) == ["version_0", "version_1"]
    twins = [
        CSVLogger(tmp_path, name="twins"),
        CSVLogger(tmp_path, name="twins"),
        TensorBoardLogger(tmp_path, "twins"),
    ]
    fit(tmp_path, twins)
    assert [lg.log_dir.name for lg in twins] == ["version_0", "version_1", "version_0"]


@pytest.mark.parametrize("base", [CSVLogger, TensorBoardLogger])
def test_a_users_subclass_of_a_logger_beside_its_base_takes_a_version_of_its_own(tmp_path, base):
    """A subclass (a CSVLogger that also prints its rows) was taken for another kind of logger and given the
    base's version: both wrote one metrics.csv (or event files) into version_0, each over the other's."""

    class Mine(base):
        pass

    loggers = [base(tmp_path, name="logs"), Mine(tmp_path, name="logs")]
    fit(tmp_path, loggers)
    assert [lg.log_dir.name for lg in loggers] == ["version_0", "version_1"]
    # Beside a logger of the other kind it still shares that one's version.
    other = TensorBoardLogger if base is CSVLogger else CSVLogger
    pair = [Mine(tmp_path, name="pair"), other(tmp_path, name="pair")]
    fit(tmp_path, pair)
    assert [lg.log_dir.name for lg in pair] == ["version_0", "version_0"]


@pytest.mark.parametrize("cls", [CSVLogger, TensorBoardLogger])
def test_a_resumed_fit_and_a_loggers_own_later_fit_go_on_in_its_version_folder(tmp_path, cls):
    first = fit(tmp_path, cls(tmp_path, name="logs", version=0))
    checkpoint = tmp_path / "epoch0"  # (`last` moves on with each resumed fit)
    shutil.copytree(first.checkpoint_callback.last_model_path, checkpoint)
    # Resumed from the checkpoint twice, with version= given again or left to the checkpoint.
    for version in (0, None):
        resumed = cls(tmp_path, name="logs", version=version)
        fit(tmp_path, resumed, epochs=2, ckpt_path=checkpoint)
        assert resumed.log_dir == tmp_path / "logs" / "version_0"
    if cls is CSVLogger:
        steps = [line.split(",")[0] for line in resumed.metrics_file.read_text().splitlines()[1:]]
        assert steps == ["2", "4"]  # the second resume dropped what the first wrote after the checkpoint
    else:
        assert [step for step, _ in read_scalars(resumed.log_dir)["train_loss"]] == [2, 4]
    # The same logger given to a second fit is its own run: it goes on in its folder (a new Trainer's fit,
    # which is said: test_a_logger_reused_by_a_new_trainers_fresh_fit_warns_that_it_goes_on_in_the_first_run).
    own = cls(tmp_path / "own", name="logs", version=0)
    fit(tmp_path / "own", own)
    with pytest.warns(LoggerWarning, match="already logged another Trainer's fit"):
        fit(tmp_path / "own", own)
    assert own.log_dir == tmp_path / "own" / "logs" / "version_0"


def test_a_fit_that_failed_before_its_logger_started_can_run_again_in_the_given_version(tmp_path):
    """The fresh fit claims `version=3`'s folder (an empty hparams.yaml) before its loggers start; another
    logger failing to start then stops the fit. The same Trainer and logger fitted again go on in their own
    claim rather than refusing it as "another run's logs"."""
    from audiotrain.train.loggers import LoggerNotStarted

    blocker = tmp_path / "a_file"
    cannot_start = CSVLogger(blocker)
    blocker.write_text("")  # (after: a file given as the folder is refused at once)
    cannot_start.required = True
    logger = CSVLogger(tmp_path, name="logs", version=3)
    trainer = Trainer(max_epochs=1, default_root_dir=tmp_path, logger=[cannot_start, logger], compile=False)
    with pytest.raises(LoggerNotStarted):
        trainer.fit(TinyClassifier(), make_batches(32))
    assert (tmp_path / "logs" / "version_3" / "hparams.yaml").read_text() == "{}\n"  # (the claim)
    trainer.fit(TinyClassifier(), make_batches(32))  # (the first logger is disabled now)
    assert logger.log_dir == tmp_path / "logs" / "version_3" and logger.metrics_file.exists()
    assert "trainer/max_epochs" in (logger.log_dir / "hparams.yaml").read_text()


# ------------------------------------------------------------------ Lightning's keyword arguments


def test_a_wandb_keyword_that_wandb_init_does_not_take_is_refused_when_the_logger_is_made(tmp_path):
    """Lightning's prefix= / version= (or a typo) passed the constructor; at fit, wandb.init's TypeError was
    taken for a network failure: a warning, and the whole run trained with W&B switched off."""
    with pytest.raises(ValueError, match=r"WandbLogger\(prefix='fold1'\): .*self\.log\('fold1/loss'"):
        WandbLogger(prefix="fold1", offline=True)
    with pytest.raises(ValueError, match=r"WandbLogger\(version='abc123'\): .*run id: pass id="):
        WandbLogger(version="abc123", offline=True)
    with pytest.raises(ValueError, match=r"WandbLogger\(checkpoint_name='m'\): .*log_artifact\("):
        WandbLogger(checkpoint_name="m", offline=True)
    with pytest.raises(TypeError, match=r"keyword argument 'projct' \(did you mean 'project'\?\)"):
        WandbLogger(projct="p", offline=True)
    # Lightning's defaults say what happens anyway; wandb.init's own keywords go to it.
    logger = WandbLogger(prefix="", version=None, save_dir=tmp_path, offline=True, tags=["a"], id="run1")
    assert logger.version == "run1" and logger.kwargs == {"tags": ["a"]}


def test_lightnings_logger_spellings_work_or_say_what_to_use_instead(tmp_path):
    """MLFlowLogger, TensorBoardLogger(default_hp_metric=..., log_graph=...) and
    CSVLogger(flush_logs_every_n_steps=...) failed with a bare AttributeError / "unexpected keyword"."""
    from audiotrain.train import MLFlowLogger as from_train
    from audiotrain.train.loggers import MLFlowLogger, MLflowLogger

    assert MLFlowLogger is MLflowLogger and from_train is MLflowLogger
    # Exported as audiotrain.train exports it: `import *` and help() of the package list it too.
    star: dict = {}
    exec("from audiotrain.train.loggers import *", star)
    assert star["MLFlowLogger"] is MLflowLogger
    # Accepted where the value is what happens here.
    TensorBoardLogger(tmp_path, default_hp_metric=False, log_graph=False, prefix="", sub_dir=None)
    CSVLogger(tmp_path, flush_logs_every_n_steps=10, prefix="")
    # Refused by name, with what to use instead.
    with pytest.raises(ValueError, match=r"TensorBoardLogger\(log_graph=True\): .*an MLX model has none"):
        TensorBoardLogger(tmp_path, log_graph=True)
    with pytest.raises(ValueError, match=r"TensorBoardLogger\(default_hp_metric=True\): .*own scalars"):
        TensorBoardLogger(tmp_path, default_hp_metric=True)
    with pytest.raises(ValueError, match=r"CSVLogger\(prefix='fold1'\): .*self\.log\('fold1/loss'"):
        CSVLogger(tmp_path, prefix="fold1")
    with pytest.raises(ValueError, match=r"CSVLogger\(flush_logs_every_n_steps=0\): expected a positive int"):
        CSVLogger(tmp_path, flush_logs_every_n_steps=0)
    with pytest.raises(TypeError, match=r"CSVLogger\(\) got an unexpected keyword argument 'nmae' \(did you"):
        CSVLogger(tmp_path, nmae="x")
    with pytest.raises(ValueError, match=r"MLflowLogger\(run_id='abc'\): .*ckpt_path="):
        MLflowLogger("e", run_id="abc")


def test_a_lightning_scripts_loggers_import_reads_as_audiotrain_loggers(tmp_path):
    """`from lightning.pytorch.loggers import CSVLogger` with lightning.pytorch -> audiotrain was a
    ModuleNotFoundError ("No module named 'audiotrain.loggers'"), where `audiotrain.callbacks` reads as
    `lightning.pytorch.callbacks`."""
    from audiotrain.loggers import CSVLogger as LightningCSVLogger
    from audiotrain.loggers import Logger as LightningLogger
    from audiotrain.loggers import MLFlowLogger as LightningMLFlowLogger
    from audiotrain.loggers import TensorBoardLogger as LightningTensorBoardLogger
    from audiotrain.loggers import WandbLogger as LightningWandbLogger
    from audiotrain.train.loggers import MLflowLogger

    assert (LightningCSVLogger, LightningTensorBoardLogger, LightningWandbLogger, LightningLogger) == (
        CSVLogger,
        TensorBoardLogger,
        WandbLogger,
        Logger,
    )
    assert LightningMLFlowLogger is MLflowLogger
    logger = LightningCSVLogger(tmp_path, name="csv")
    fit(tmp_path, logger)
    assert "train_loss" in (Path(logger.log_dir) / "metrics.csv").read_text().splitlines()[0]


def test_lightnings_logger_calls_from_a_callback_log(tmp_path):
    """log_metrics without a step, log_hyperparams with a Namespace and TensorBoardLogger's metrics=, and
    save() raised a bare TypeError / AttributeError where Lightning's Logger takes them."""

    class LogsByHand(Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            trainer.logger.log_metrics({"custom": 1.5})  # at the step the Trainer logged last: 2
            trainer.logger.log_hyperparams(argparse.Namespace(width=3), metrics={"hp_metric": 0.25})
            trainer.logger.save()

    logger = TensorBoardLogger(tmp_path, name="tb")
    fit(tmp_path, logger, callbacks=[LogsByHand()])  # 2 steps, logged at step 2
    scalars = read_scalars(logger.log_dir)
    assert scalars["custom"] == [(2, 1.5)] and scalars["hp_metric"] == [(2, 0.25)]
    assert "width: 3" in (logger.log_dir / "hparams.yaml").read_text()


def test_fast_dev_run_hands_code_that_logs_by_hand_a_dummy_logger_and_writes_nothing(tmp_path):
    """Under fast_dev_run `self.logger` was None, so a module or callback that logs by hand, which trains in
    a real fit, stopped the debugging run with an AttributeError; Lightning gives it a DummyLogger."""

    class LogsByHand(Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            pl_module.logger.log_metrics({"custom": 1.5})
            pl_module.logger.log_hyperparams({"width": 3})
            pl_module.logger.experiment.add_scalar("custom", 1.5, 0)

    logger = CSVLogger(tmp_path, name="csv")
    trainer = quiet_trainer(
        tmp_path, logger=logger, fast_dev_run=True, compile=False, callbacks=[LogsByHand()]
    )
    trainer.fit(TinyClassifier(), make_batches(32))
    assert type(trainer.logger).__name__ == "DummyLogger" and trainer.log_dir == str(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_dummy_logger_takes_any_arguments_to_its_logging_calls_as_lightnings_does():
    """Lightning's DummyLogger (test_dummylogger_noop_method_calls) takes any arguments; this one checked
    them as a real logger's do: ``log_metrics("1", 2, three="three")`` raised a TypeError."""
    from audiotrain.train.loggers import DummyLogger

    logger = DummyLogger()
    logger.log_hyperparams("1", 2, three="three")
    logger.log_metrics("1", 2, three="three")
    logger.log_metrics({"loss": 1.0}, step=0, epoch=0)


def test_fast_dev_run_takes_a_wandb_users_media_calls_and_writes_nothing(tmp_path):
    """A validation hook logging with WandbLogger's log_image / log_audio (and `self.logger[0].experiment`,
    which Lightning's DummyLogger allows) trains in a real fit; under fast_dev_run the DummyLogger in its
    place raised AttributeError: 'DummyLogger' object has no attribute 'log_image'. Lightning's takes any
    call."""
    import numpy as np

    class LogsMedia(Callback):
        def on_validation_epoch_end(self, trainer, pl_module):
            pl_module.logger.log_image("val/spectrogram", [np.zeros((8, 8))], caption=["song"])
            pl_module.logger.log_audio("val/audio", [np.zeros(160)], sample_rate=[16000])
            pl_module.logger[0].experiment.add_image("val/spectrogram", np.zeros((1, 8, 8)), 0)
            self.ran = True

    logger = WandbLogger(project="audiotrain-tests", save_dir=tmp_path / "wandb", offline=True)
    callback = LogsMedia()
    trainer = quiet_trainer(tmp_path, logger=logger, fast_dev_run=True, compile=False, callbacks=[callback])
    batches = make_batches(32)
    trainer.fit(TinyClassifier(), batches, batches)
    assert callback.ran and type(trainer.logger).__name__ == "DummyLogger"
    assert list(tmp_path.iterdir()) == []


def test_mlflow_save_dir_is_lightnings_file_store_in_that_folder(tmp_path):
    from audiotrain.train.loggers import MLflowLogger

    from mlflow.tracking import MlflowClient

    store = tmp_path / "mlruns"
    logger = MLflowLogger("exp", save_dir=store)
    assert logger.tracking_uri == store.as_uri() and logger.save_dir == store
    logger.log_metrics({"loss": 0.5}, step=3)
    logger.finalize("success")
    history = MlflowClient(tracking_uri=store.as_uri()).get_metric_history(logger.version, "loss")
    assert [(m.step, m.value) for m in history] == [(3, 0.5)]
    with pytest.raises(TypeError, match="give tracking_uri or save_dir .*not both"):
        MLflowLogger("exp", tracking_uri=str(tmp_path / "mlflow.db"), save_dir=store)


def test_lightnings_default_and_home_relative_save_dirs(tmp_path, monkeypatch):
    from audiotrain.train.loggers import MLflowLogger

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    logger = TensorBoardLogger()  # Lightning's default save_dir, ./tb_logs
    logger.log_metrics({"loss": 0.5}, step=0)
    logger.finalize("success")
    assert read_scalars(tmp_path / "tb_logs" / "default" / "version_0")["loss"] == [(0, 0.5)]
    assert MLflowLogger("exp", save_dir="~/mlruns").save_dir == tmp_path / "home" / "mlruns"


def test_tensorboard_save_dir_expands_environment_variables_as_lightnings_does(tmp_path, monkeypatch):
    """Lightning's TensorBoardLogger("$SCRATCH/tb") writes under the variable's folder (its
    test_tensorboard_log_sub_dir; 2.6.6's log_dir "some_directory/tmp/n/v"); here it made a folder named
    "$SCRATCH" in the working folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCRATCH", str(tmp_path / "scratch"))
    logger = TensorBoardLogger("$SCRATCH/tb", name="n", version="v")
    assert logger.log_dir == tmp_path / "scratch" / "tb" / "n" / "v"
    logger.log_metrics({"loss": 0.5}, step=0)
    logger.finalize("success")
    assert read_scalars(tmp_path / "scratch" / "tb" / "n" / "v")["loss"] == [(0, 0.5)]
    assert not (tmp_path / "$SCRATCH").exists()


# ------------------------------------------------------------------ warnings on the recipes' command line

REPO = Path(__file__).resolve().parents[1]

# The recipe's command (its __main__) with a stand-in for its cli whose run has a CSV logger that cannot
# write (its folder became a file after the logger was made: one given as a file is refused at once): the
# logger warns, as a real run's would.
RUN_THE_COMMAND = """
import runpy, sys, types
from audiotrain.train.loggers import CSVLogger

def main(argv=None):
    logger = CSVLogger(sys.argv[1])
    open(sys.argv[1], "w").close()
    logger.log_metrics({"loss": 1.0}, step=1)
    return 0

recipe, how = sys.argv[2], sys.argv[3]
cli = types.ModuleType(f"audiotrain.recipes.{recipe}.cli")
cli.main = main
sys.modules[cli.__name__] = cli
if how == "command":
    runpy.run_module(f"audiotrain.recipes.{recipe}", run_name="__main__")
else:
    main()  # from Python
"""


@pytest.mark.parametrize("recipe", ["chords", "clap"])
def test_the_recipes_commands_print_a_warning_on_one_line(tmp_path, recipe):
    """A logger's warning printed the library's file path and the line of code that warned (with an internal
    comment) before the message; Python code keeps Python's format."""
    env = child_env()

    def stderr_of(how):
        (tmp_path / "a_file").unlink(missing_ok=True)
        args = [sys.executable, "-c", RUN_THE_COMMAND, str(tmp_path / "a_file"), recipe, how]
        done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stderr

    lines = stderr_of("command").splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "warning: LoggerWarning: CSVLogger could not start its run ("
    )
    from_python = stderr_of("python")
    assert re.match(r"<string>:\d+: LoggerWarning: CSVLogger could not start its run \(", from_python)


@pytest.mark.parametrize("cls", [CSVLogger, TensorBoardLogger])
def test_a_notebook_reads_the_logs_back_as_lightnings_tutorials_do(tmp_path, cls):
    """Lightning's log_dir is a str, and its tutorials read a run back with `pd.read_csv(logger.log_dir +
    "/metrics.csv")`: here log_dir was a pathlib.Path, so the same line was "TypeError: unsupported operand
    type(s) for +: 'PosixPath' and 'str'". It stays a Path (`log_dir / "metrics.csv"`) that also joins a str."""
    logger = cls(tmp_path, name="nb")
    fit(tmp_path, logger)
    folder = tmp_path / "nb" / "version_0"
    joined = logger.log_dir + "/hparams.yaml"  # (both write it; CSV's metrics.csv beside it)
    assert isinstance(joined, str) and Path(joined).is_file() and Path(joined).parent == folder
    assert "x/" + logger.save_dir == f"x/{tmp_path}"
    assert logger.root_dir + "/version_0" == str(folder)
    assert logger.log_dir == folder and isinstance(logger.log_dir / "hparams.yaml", Path)


# ------------------------------------------------------------------ a Logger written as for Lightning


class JsonLinesLogger(Logger):
    """A logger as Lightning's docs have one written: the public methods overridden, rows buffered by
    `log_metrics` and written by `save()` (which Lightning calls after each `log_metrics`, and its
    `finalize` calls too); no `_start`, `_log_metrics` of audiotrain's own backends."""

    def __init__(self, path):
        super().__init__()
        self.path, self.rows, self.hparams = path, [], None

    @property
    def name(self):
        return "jsonl"

    @property
    def version(self):
        return 0

    def log_hyperparams(self, params, *args, **kwargs):
        self.hparams = dict(params)

    def log_metrics(self, metrics, step=None):
        self.rows.append({"step": step, **metrics})

    def save(self):
        with open(self.path, "a") as f:
            f.writelines(json.dumps(row) + "\n" for row in self.rows)
        self.rows = []


def test_a_logger_written_as_for_lightning_has_its_rows_saved_and_is_not_called_broken(tmp_path):
    """Such a logger was told it 'could not start its run (NotImplementedError: ): nothing is logged to it',
    its save() was never called (the rows it buffered never reached its file), and it got the config as
    nested dicts where the README says every logger gets it flattened with '/'."""
    logger = JsonLinesLogger(tmp_path / "metrics.jsonl")
    with warnings.catch_warnings():
        warnings.simplefilter("error", LoggerWarning)
        trainer = fit(tmp_path, logger, epochs=2)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert logger.rows == [] and rows
    assert [r["step"] for r in rows if "train_loss" in r] == [2, 4]
    assert rows[-1]["train_loss_epoch"] == pytest.approx(trainer.callback_metrics["train_loss_epoch"])
    assert logger.hparams["trainer/max_epochs"] == 2 and "trainer" not in logger.hparams


class HistoryWithSaveToPath:
    """A duck-typed logger whose `save(path)` writes its rows where the user's script says, once, at its
    end: no Lightning `save()`, which takes no arguments."""

    def __init__(self):
        self.rows, self.saved_to = [], []

    def log_metrics(self, metrics, step=None):
        self.rows.append({"step": step, **metrics})

    def save(self, path):
        self.saved_to.append(path)


def test_a_logger_whose_save_takes_a_path_is_not_called_without_one_after_each_row(tmp_path):
    """Since the Trainer calls a logger's own save() after each log_metrics (as Lightning's does), a logger
    whose save(path) needs an argument stopped the fit at its first logged row with 'TypeError: save()
    missing 1 required positional argument', where it trained before: such a save is not Lightning's and
    is left to the user's script."""
    history = HistoryWithSaveToPath()
    trainer = fit(tmp_path, history, epochs=2)
    assert trainer.current_epoch == 2 and [r["step"] for r in history.rows if "train_loss" in r] == [2, 4]
    assert history.saved_to == []


class RecordsCalls(JsonLinesLogger):
    def __init__(self, path):
        super().__init__(path)
        self.calls = []

    def log_hyperparams(self, params, *args, **kwargs):
        self.calls.append("log_hyperparams")

    def log_metrics(self, metrics, step=None):
        self.calls.append("log_metrics")

    def save(self):
        self.calls.append("save")


def test_a_logger_written_as_for_lightning_is_saved_after_its_hyperparameters(tmp_path):
    # Lightning 2.6.6's fit calls log_hyperparams, then save, before the first log_metrics (a logger that
    # writes its hparams file in save() has it on disk from the start); here save came only after a row.
    logger = RecordsCalls(tmp_path / "metrics.jsonl")
    fit(tmp_path, logger)
    assert logger.calls[:4] == ["log_hyperparams", "save", "log_metrics", "save"]


def test_a_trainers_logger_and_loggers_can_be_set_as_in_lightning(tmp_path):
    """`trainer.logger = None` raised "property 'logger' of 'Trainer' object has no setter",
    `trainer.loggers = {}` kept a dict and `Trainer(logger={})` was refused. Lightning 2.6.6: setting
    `logger` sets the list to it (None: []), and `loggers` takes a list (copied), None, [] or {} (no
    logger)."""
    first, second = CSVLogger(tmp_path / "a"), CSVLogger(tmp_path / "b")
    trainer = Trainer(logger=first)
    trainer.logger = None
    assert trainer.logger is None and trainer.loggers == []
    trainer.logger = second
    assert trainer.loggers == [second]
    given = [first, second]
    trainer.loggers = given
    assert trainer.logger is first and trainer.loggers == [first, second]
    trainer.loggers.pop()
    assert given == [first, second]  # (a copy: the caller's list stays as it was)
    for nothing in (None, [], {}):
        trainer.loggers = nothing
        assert trainer.loggers == [] and isinstance(trainer.loggers, list) and trainer.logger is None
    trainer.loggers = {"main": first}
    assert trainer.loggers == [first]
    with pytest.raises(TypeError, match="has no log_metrics"):
        trainer.loggers = ["not a logger"]
    # Trainer(logger={}) was refused: "{} has no log_metrics(metrics, step) method"; Lightning 2.6.6 has none
    assert Trainer(logger={}).loggers == [] and Trainer(logger={"main": first}).loggers == [first]
    # a fit with the loggers set afterwards writes to them
    trainer = Trainer(
        max_epochs=1, default_root_dir=tmp_path, enable_progress_bar=False, logger=False, log_every_n_steps=1
    )
    trainer.logger = CSVLogger(tmp_path / "late")
    trainer.fit(TinyClassifier(), make_batches())
    assert list((tmp_path / "late").rglob("metrics.csv"))


def test_a_logger_set_on_the_trainer_that_is_none_is_refused_naming_the_attribute(tmp_path):
    """`trainer.logger = "csv"` and `trainer.loggers = ["csv"]` were refused as "Trainer(logger=...): 'csv'
    has no log_metrics(metrics, step) method", naming an argument the script never passed; and
    `trainer.logger = False` (Lightning's setter takes it as no logger, `not logger`) was refused."""
    trainer = Trainer(logger=CSVLogger(tmp_path / "a"))
    with pytest.raises(TypeError, match=r"^trainer\.logger: 'csv' has no log_metrics"):
        trainer.logger = "csv"
    with pytest.raises(TypeError, match=r"^trainer\.loggers: 'csv' has no log_metrics"):
        trainer.loggers = ["csv"]
    with pytest.raises(TypeError, match=r"^Trainer\(logger=\.\.\.\): 'csv' has no log_metrics"):
        Trainer(logger="csv")
    trainer.logger = False
    assert trainer.loggers == [] and trainer.logger is None


def test_a_mock_logger_trains_checkpoints_and_resumes_as_in_lightning(tmp_path):
    """`logger=unittest.mock.Mock()` (Lightning's own tests use one: test_first_logger_call_in_subprocess)
    ended the first checkpoint in "RecursionError: maximum recursion depth exceeded": the Mock's
    `state_dict()` answered with a Mock, which was written as the logger's state. Lightning 2.6.6 saves no
    logger state; with a Mock it fits and calls log_graph, save, after_save_checkpoint, finalize. Here the
    Mock's state is none, the checkpoint is written, and a fit resumes from it."""
    from unittest.mock import Mock

    def mock_logger():
        logger = Mock()
        logger.version, logger.name, logger.save_dir = "0", "name", str(tmp_path)
        return logger

    logger = mock_logger()
    trainer = fit(tmp_path, logger)
    called = [name for name, _, _ in logger.method_calls]
    assert {"log_metrics", "after_save_checkpoint", "finalize"} <= set(called)
    last = trainer.checkpoint_callback.last_model_path
    assert Path(last).exists()
    resumed = fit(tmp_path, mock_logger(), epochs=2, ckpt_path=last)
    assert resumed.global_step == 4
