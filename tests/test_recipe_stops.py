"""A stop signal (Ctrl-C, SIGTERM) just before or just after a recipe's training, in one process: one line that
names the signal and says what is left, the exit status a shell gives a command that signal ended, and a run
folder that lets the same command run again. (With several processes: tests/test_signals.py.)"""

import json
import signal

from audiotrain.recipes.chords import cli as chords
from audiotrain.recipes.chords import train as chords_train
from audiotrain.recipes.clap import train as clap_train
from audiotrain.train.trainer import Trainer

import pytest
from test_chords_cv import TINY_CV_FLAGS
from test_recipe_chords import TINY_FLAGS
from test_recipe_clap import _tiny_demo_argv

SIGNALS = ["SIGINT", "SIGTERM"]  # Ctrl-C; `timeout`, a cluster's time limit or preemption


def _named(name: str) -> str:
    return "Ctrl-C" if name == "SIGINT" else name


def _raise(name: str) -> None:
    """Send this process `name`, as a terminal's Ctrl-C or `kill` would, where a handler takes it."""
    signum = getattr(signal, name)
    assert signal.getsignal(signum) is not signal.SIG_DFL, f"{name} would end the process (and pytest)"
    signal.raise_signal(signum)


def _main(argv: list[str]):
    try:
        return chords.main(argv)
    except KeyboardInterrupt:  # (caught: pytest would take it for the user's Ctrl-C)
        return "a KeyboardInterrupt traceback"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """The demo songs and their features, shared by the runs below."""
    return tmp_path_factory.mktemp("stops_cache")


def _argv(cache, run_dir) -> list[str]:
    return [*TINY_FLAGS, "--data.cache_dir", str(cache), "--run_dir", str(run_dir)]


def _stopping_as_the_loaders_are_made(patch, *names: str) -> None:
    """The signals `names`, in turn, as the run makes its loaders: after its config.json and data_report.txt
    are written, before training (where every rank of a job works together)."""
    make_loaders = chords_train.make_loaders

    def make_loaders_then_stop(*args, **kwargs):
        loaders = make_loaders(*args, **kwargs)
        for name in names:
            _raise(name)
        return loaders

    patch.setattr(chords_train, "make_loaders", make_loaders_then_stop)


@pytest.mark.parametrize("name", SIGNALS)
def test_a_stop_just_before_training_leaves_no_run_folder_and_the_same_command_runs(
    cache, tmp_path, monkeypatch, capsys, name
):
    """It left config.json and data_report.txt behind, and the same command was refused: "--run_dir ...
    already holds files (a previous run?)"."""
    run_dir = tmp_path / "run"
    with monkeypatch.context() as patch:
        _stopping_as_the_loaders_are_made(patch, name)
        assert _main(_argv(cache, run_dir)) == 128 + getattr(signal, name)  # 130, 143
    err = capsys.readouterr().err  # (the lines before say what it read: the songs, their features)
    assert (
        err.endswith(
            f"\nstopped ({_named(name)}) before training: nothing was left in a run folder: run the same command "
            "again to start it\n"
        )
        and err.count("stopped (") == 1
        and "Traceback" not in err
    ), err
    assert not run_dir.exists()
    if name == "SIGINT":
        assert _main(_argv(cache, run_dir)) == 0


def test_a_second_ctrl_c_before_training_stops_at_once_and_leaves_no_run_folder_either(
    cache, tmp_path, monkeypatch, capsys
):
    run_dir = tmp_path / "run"
    with monkeypatch.context() as patch:
        _stopping_as_the_loaders_are_made(patch, "SIGINT", "SIGINT")  # the second: at once, not at the check
        assert _main(_argv(cache, run_dir)) == 130
    err = capsys.readouterr().err
    assert "\nstopped (Ctrl-C) before training: nothing was left" in err and "Traceback" not in err, err
    assert not run_dir.exists()


def test_a_stop_before_a_resumed_run_goes_on_leaves_its_folder_as_it_was(
    cache, tmp_path, monkeypatch, capsys
):
    run_dir = tmp_path / "run"
    assert _main(_argv(cache, run_dir)) == 0
    checkpoint = run_dir / "checkpoints" / "epoch=000"
    record = (run_dir / "config.json").read_bytes()
    before = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*"))
    argv = [
        *_argv(cache, run_dir),
        "--resume",
        str(checkpoint),
        "--num_epochs",
        "3",
    ]  # (rewrites config.json)
    capsys.readouterr()
    with monkeypatch.context() as patch:
        _stopping_as_the_loaders_are_made(patch, "SIGTERM")
        assert _main(argv) == 143
    err = capsys.readouterr().err
    assert (
        err.endswith(
            f"\nstopped (SIGTERM) before training went on: {run_dir} is as it was: run the same command again to "
            "go on\n"
        )
        and err.count("stopped (") == 1
        and "Traceback" not in err
    ), err
    assert (run_dir / "config.json").read_bytes() == record
    assert sorted(p.relative_to(run_dir) for p in run_dir.rglob("*")) == before


def test_a_second_sigterm_that_aborts_the_save_prints_the_command_that_goes_on(
    cache, tmp_path, monkeypatch, capsys
):
    """`scancel` twice (or SIGTERM, then another as the save runs): fit aborts the save of `interrupted`
    and names the newest intact checkpoint, and the command exited 143 without the command that continues
    the run from it, which every other stop prints."""
    from pathlib import Path

    from audiotrain.train import checkpoint as ckpt

    write_checkpoint = ckpt.write_checkpoint

    def stopped_twice(path, *args, **kwargs):
        if Path(path).name == "interrupted":
            _raise("SIGTERM")  # the second, as the save begins
        written = write_checkpoint(path, *args, **kwargs)
        if Path(path).name == "epoch=000":
            _raise("SIGTERM")  # the first: stop after the next step and save
        return written

    monkeypatch.setattr(ckpt, "write_checkpoint", stopped_twice)
    run_dir = tmp_path / "run"
    assert _main(_argv(cache, run_dir)) == "a KeyboardInterrupt traceback"  # (SaveAborted: status 143)
    err = capsys.readouterr().err
    assert "Save aborted" in err, err
    newest = run_dir / "checkpoints" / "last"  # (saved at epoch 0's end, beside best and epoch=000)
    lines = err.splitlines()
    assert lines[-2] == "continue the run with:", err
    assert lines[-1].endswith(f"--run_dir {run_dir} --resume {newest}"), err
    monkeypatch.setattr(ckpt, "write_checkpoint", write_checkpoint)
    assert _main([*_argv(cache, run_dir), "--resume", str(newest)]) == 0


def test_a_stop_as_fit_sets_up_is_not_lost_it_stops_training_after_a_step(
    cache, tmp_path, monkeypatch, capsys
):
    """Between the check before training and fit's own handler a stop signal is held: passed on to fit as it
    starts, it stops the run after its first step, with a checkpoint, as during training."""
    setup_optimizer = Trainer._setup_optimizer

    def setup_optimizer_then_stop(self, *args, **kwargs):
        setup_optimizer(self, *args, **kwargs)
        _raise("SIGTERM")

    monkeypatch.setattr(Trainer, "_setup_optimizer", setup_optimizer_then_stop)
    run_dir = tmp_path / "run"
    assert _main(_argv(cache, run_dir)) == 143
    out = capsys.readouterr().err
    assert "training was interrupted (SIGTERM); continue it with:" in out
    assert (run_dir / "checkpoints" / "interrupted").is_dir()
    assert "trained 0 epochs" in out


@pytest.mark.parametrize("name", SIGNALS)
def test_a_stop_before_the_first_validation_names_its_signal_where_it_evaluates_the_weights_it_left(
    cache, tmp_path, monkeypatch, capsys, name
):
    # A SIGTERM (a cluster's time limit) was logged as "evaluating the weights as Ctrl-C stopped them".
    setup_optimizer = Trainer._setup_optimizer

    def setup_optimizer_then_stop(self, *args, **kwargs):
        setup_optimizer(self, *args, **kwargs)
        _raise(name)

    monkeypatch.setattr(Trainer, "_setup_optimizer", setup_optimizer_then_stop)
    assert _main(_argv(cache, tmp_path / "run")) == 128 + getattr(signal, name)
    err = capsys.readouterr().err
    said = "no validated checkpoint (stopped before the first validation): evaluating the weights as"
    assert f"{said} {_named(name)} stopped them" in err, err


@pytest.mark.parametrize("name", SIGNALS)
def test_a_stop_in_the_held_out_evaluation_says_what_is_saved_naming_the_signal(
    cache, tmp_path, monkeypatch, capsys, name
):
    """SIGTERM there ended the run with status 143 and not a word: no summary, no evaluate command, and
    the `trained ...` line still in stdout's buffer was lost too."""
    evaluate_held_out = chords_train._evaluate_held_out

    def stop_then_evaluate(*args, **kwargs):
        _raise(name)
        return evaluate_held_out(*args, **kwargs)

    monkeypatch.setattr(chords_train, "_evaluate_held_out", stop_then_evaluate)
    run_dir = tmp_path / "run"
    assert _main(_argv(cache, run_dir)) == 128 + getattr(signal, name)
    captured = capsys.readouterr()
    assert f"interrupted ({_named(name)}) after training: {run_dir / 'checkpoints'} holds" in captured.err
    assert "Score the checkpoint with:\n  python -m audiotrain.recipes.chords evaluate" in captured.err
    assert "trained 2 epochs" in captured.err and f"run folder: {run_dir}" in captured.out


def test_a_stop_in_the_evaluation_once_its_folder_is_begun_says_it_is_cut_short_and_after_it_nothing(
    cache, tmp_path, monkeypatch, capsys
):
    """With scores.json written and the confusion matrix not yet, the line said "nothing missing" (the
    evaluation folder counted as there); a stop once the evaluation is whole offers no command to redo it."""
    evaluate_held_out = chords_train._evaluate_held_out

    def begin_then_stop(best, splits, run_dir, *args, **kwargs):
        (run_dir / "evaluation").mkdir()
        (run_dir / "evaluation" / "scores.json").write_text("{}")
        _raise("SIGINT")

    monkeypatch.setattr(chords_train, "_evaluate_held_out", begin_then_stop)
    run_dir = tmp_path / "run"
    assert _main(_argv(cache, run_dir)) == 130
    err = capsys.readouterr().err
    assert "; evaluation (cut short) missing. Score the checkpoint with:" in err, err

    monkeypatch.setattr(chords_train, "_evaluate_held_out", evaluate_held_out)

    def stop_in_the_loggers(*args, **kwargs):
        _raise("SIGINT")

    monkeypatch.setattr(chords_train, "_report_to_loggers", stop_in_the_loggers)
    run_dir = tmp_path / "run2"
    assert _main(_argv(cache, run_dir)) == 130
    err = capsys.readouterr().err
    assert "; nothing missing\n" in err and "Score the checkpoint" not in err, err


def test_a_sigterm_in_a_folds_evaluation_stops_the_cv_naming_it(cache, tmp_path, monkeypatch, capsys):
    evaluate_held_out = chords_train._evaluate_held_out

    def stop_then_evaluate(*args, **kwargs):
        _raise("SIGTERM")
        return evaluate_held_out(*args, **kwargs)

    monkeypatch.setattr(chords_train, "_evaluate_held_out", stop_then_evaluate)
    run_dir = tmp_path / "cv"
    argv = ["cv", "--folds", "2", *TINY_CV_FLAGS, "--data.cache_dir", str(cache), "--run_dir", str(run_dir)]
    assert _main(argv) == 143
    out = capsys.readouterr().err
    best = run_dir / "fold0" / "checkpoints" / "best"
    assert f"cross-validation interrupted (SIGTERM) in fold 0 (1 of 2) (saved {best});" in out


def test_clap_a_sigterm_after_training_says_what_is_saved_and_how_to_export(tmp_path, monkeypatch, capsys):
    from audiotrain.recipes.clap import cli as clap

    write_plots = clap_train.write_plots

    def stop_then_plot(*args, **kwargs):
        _raise("SIGTERM")
        return write_plots(*args, **kwargs)

    monkeypatch.setattr(clap_train, "write_plots", stop_then_plot)
    out = tmp_path / "run"
    assert clap.main(_tiny_demo_argv(tmp_path, out)) == 143
    err = capsys.readouterr().err
    assert "interrupted (SIGTERM) after training" in err and f"{out / 'checkpoints'} are saved" in err


def test_clap_cv_stopped_in_a_folds_evaluation_says_so_naming_the_signal(tmp_path, monkeypatch, capsys):
    """Its line never came: the fold's stop was raised as a KeyboardInterrupt, which cv's handler (for its
    own FoldInterrupted) let pass, and the command printed "interrupted (Ctrl-C)", whatever the signal."""
    from audiotrain.recipes.clap import main as clap_main

    write_plots = clap_train.write_plots

    def stop_then_plot(*args, **kwargs):
        _raise("SIGTERM")
        return write_plots(*args, **kwargs)

    monkeypatch.setattr(clap_train, "write_plots", stop_then_plot)
    out = tmp_path / "cv"
    try:
        code = clap_main(["cv", "--folds", "2", *_tiny_demo_argv(tmp_path, out)])
    except KeyboardInterrupt:  # (caught: pytest would take it for the user's Ctrl-C)
        code = "a KeyboardInterrupt traceback"
    assert code == 143
    assert (
        f"cv: fold 0 (1 of 2) was interrupted (SIGTERM); its run is in {out / 'fold0'}"
        in capsys.readouterr().err
    )


def _stopped_in_training(command: str, tmp_path, monkeypatch):
    """`command`'s main, and its argv, with its runs stopped in training (as a Ctrl-C during the fit ends
    them on every rank of a job): the recipes' functions are patched, nothing trains."""
    from audiotrain.recipes.chords import cv as chords_cv
    from audiotrain.recipes.clap import cli as clap_cli
    from audiotrain.recipes.clap import cv as clap_cv

    out = tmp_path / "run"
    if command == "chords cv":

        def stopped(config, run_dir, **kwargs):
            raise chords_cv.CrossValidationInterrupted(run_dir, 0, None)

        monkeypatch.setattr(chords_cv, "run_cross_validation", stopped)
        return chords.main, ["cv", "--folds", "2", *TINY_CV_FLAGS, "--run_dir", str(out)]
    argv = [*_tiny_demo_argv(tmp_path, out), "--train.processes", "1"]
    if command == "clap cv":

        def stopped(cfg, folds, argv, **settings):
            raise clap_cv.FoldInterrupted(f"cv: fold 0 (1 of {folds}) was interrupted (Ctrl-C)")

        monkeypatch.setattr(clap_cv, "run_cross_validation", stopped)
        return clap_cli.main, ["cv", "--folds", "2", *argv]
    monkeypatch.setattr(clap_cli, "run", lambda cfg, argv, **_: {"run_dir": out, "interrupted": True})
    return clap_cli.main, argv


@pytest.mark.parametrize("command", ["clap", "clap cv", "chords cv"])
@pytest.mark.parametrize("rank", [0, 1])
def test_after_a_stop_in_training_the_other_ranks_end_with_0_and_rank_0_with_the_stop(
    command, rank, tmp_path, monkeypatch
):
    """Under a launcher, rank 1 returned 130 as soon as its fit ended: mpirun and mlx.launch then ended the
    job, and rank 0 was killed (SIGTERM) in the middle of its evaluation and export (CLAP lost plots/ and
    hf_model/, a chord cv its fold's evaluation). Rank 0 reports the stop for the job, as the chord recipe's
    training does."""
    from audiotrain.distributed import collectives
    from audiotrain.train import interrupt

    main, argv = _stopped_in_training(command, tmp_path, monkeypatch)
    monkeypatch.setattr(interrupt, "_stopped_by", signal.SIGINT)  # (what the fit heard: Ctrl-C)
    monkeypatch.setattr(collectives, "is_main_process", lambda: rank == 0)
    assert main(argv) == (130 if rank == 0 else 0)


def test_a_ctrl_c_inside_an_epoch_names_its_batches_so_the_steps_add_up(cache, tmp_path, monkeypatch, capsys):
    """A stop after epoch 1's first batch printed "trained 1 epoch (N+1 steps)": one epoch, and the steps
    of more than one."""
    call_end_hooks = Trainer._call_end_hooks

    def stop_after_a_batch_of_epoch_1(self, name, *args, **kwargs):
        if name == "on_train_batch_end" and self.current_epoch == 1 and self.batch_in_epoch == 1:
            _raise("SIGINT")
        return call_end_hooks(self, name, *args, **kwargs)

    monkeypatch.setattr(Trainer, "_call_end_hooks", stop_after_a_batch_of_epoch_1)
    run_dir = tmp_path / "run"
    assert _main(_argv(cache, run_dir)) == 130
    err = capsys.readouterr().err
    steps_of_epoch_0 = json.loads((run_dir / "history.json").read_text())["step"][0]
    assert f"trained 1 full epoch and 1 batch of epoch 1 ({steps_of_epoch_0 + 1} steps) in " in err, err
