"""Cross-validation of the chord recipe, grouped by song: `python -m audiotrain.recipes.chords cv`."""

import json
import re
import shlex
import shutil
from pathlib import Path

from audiotrain.recipes import chords
from audiotrain.recipes.chords.config import ChordDataConfig, ChordFeatureConfig, TrainingConfig
from audiotrain.recipes.chords.cv import CV_OUTPUTS, PROGRESS_FILE, _finished_folds, cv_outputs, song_folds

import numpy as np
import pytest

TINY_CV_FLAGS = [
    "--data.demo_songs", "4", "--data.demo_test_songs", "1", "--data.demo_seconds", "6",
    "--data.window_frames", "32", "--batch_size", "4", "--num_epochs", "1", "--save_every", "0",
    "--model.d_model", "32", "--model.n_layers", "1", "--model.n_heads", "2", "--model.ff_dim", "64",
    "--progress_bar", "false",
]  # fmt: skip


def test_folds_partition_the_songs_and_never_share_one():
    songs = [f"song{i}" for i in range(7)]
    folds = song_folds(songs, 3, val_fraction=0.2, seed=0, source="test")
    assert sorted(s for f in folds for s in f.test) == songs  # every song scored exactly once
    for fold in folds:
        assert not set(fold.test) & set(fold.train + fold.val) and len(fold.val) >= 1
        assert sorted(fold.train + fold.val + fold.test) == songs
    with pytest.raises(ValueError, match="3 songs cannot make 4 folds"):
        song_folds(songs[:3], 4, 0.2, 0, "test")


def test_cv_command_on_demo_songs(tmp_path, capsys):
    run_dir = tmp_path / "cv"
    # The feature cache already holds other runs' songs: the run's line counts its own, apart.
    others = tmp_path / "cache" / "features" / ChordFeatureConfig().key()
    others.mkdir(parents=True)
    for k in range(3):
        np.save(others / f"{k:024x}-{k:012x}.npy", np.zeros((2, 2), np.float32))
    argv = ["cv", "--folds", "2", *TINY_CV_FLAGS, "--data.cache_dir", str(tmp_path / "cache")]
    assert chords.main([*argv, "--run_dir", str(run_dir)]) == 0
    captured = capsys.readouterr()
    out, err = captured.out, captured.err
    assert "2-fold cross-validation over 4 songs" in out and "| majmin |" in out
    # One header per fold, numbered as its folder and its cv_scores column, then the fold's split once.
    # The results (headers, scores) on stdout; the splits, features and progress on stderr.
    lines = out.splitlines()
    folds = [i for i, line in enumerate(lines) if line.startswith("=== fold")]
    assert [lines[i] for i in folds] == [
        f"=== fold {k} ({k + 1} of 2): {run_dir / f'fold{k}'}" for k in (0, 1)
    ]
    splits = [
        line
        for line in err.splitlines()
        if re.fullmatch(r"demo songs in .*: 1 train / 1 val / 2 test songs", line)
    ]
    assert len(splits) == 2 and "demo songs in" not in out, captured
    assert "| metric | fold 0 | fold 1 |" in out
    assert "computing the features" in err and "computing the features" not in out, out
    cache_lines = [line for line in err.splitlines() if line.startswith("feature cache:")]
    assert len(cache_lines) == 2 and all("this run's 4 songs in" in line for line in cache_lines), cache_lines
    assert all("(7 songs there in all, other runs' too)" in line for line in cache_lines), cache_lines
    for k in (0, 1):
        assert (run_dir / f"fold{k}" / "checkpoints" / "best" / "model.safetensors").is_file()
        assert (run_dir / f"fold{k}" / "history.json").is_file()
    assert len(list((run_dir / "oof").glob("*.lab"))) == 4  # one out-of-fold prediction per song
    scores = json.loads((run_dir / "cv_scores.json").read_text())
    assert len(scores["folds"]) == 2 and set(scores["mean"]) == set(scores["std"])
    assert 0 <= scores["mean"]["root"] <= 1
    # The table (printed, and cv_scores.md) is in %, its mean and std those of the folds' scores.
    root = [100 * fold["root"] for fold in scores["folds"]]
    row = f"| root | {root[0]:.2f} | {root[1]:.2f} | {np.mean(root):.2f} | {np.std(root):.2f} |"
    assert row in out and row in (run_dir / "cv_scores.md").read_text().splitlines(), out
    # The resume record holds each fold's own scores (a resumed cv's table is made of them).
    done = json.loads((run_dir / "cv_progress.json").read_text())["done"]
    assert scores["folds"][0] != scores["folds"][1]
    assert [done[str(k)] for k in (0, 1)] == scores["folds"]


def test_cv_folds_follow_the_seed(cv_cache, plain_cv, tmp_path, capsys):
    """Repeated cross-validation over --seed needs another split of the songs into folds for each seed."""
    held_out = {}
    for seed in ("0", "1"):
        run_dir = tmp_path / f"seed{seed}"
        if seed == "0":  # the default seed: the shared plain run is this seed's run
            assert json.loads((plain_cv / PROGRESS_FILE).read_text())["config"]["seed"] == 0
            run_dir = plain_cv
        else:
            argv = ["cv", "--folds", "2", *TINY_CV_FLAGS, "--data.cache_dir", str(cv_cache), "--seed", seed]
            assert chords.main([*argv, "--run_dir", str(run_dir)]) == 0, capsys.readouterr().err
        held_out[seed] = {
            frozenset(p.name for p in (run_dir / f"fold{k}" / "evaluation").glob("*.lab")) for k in (0, 1)
        }
    assert all(len(songs) == 2 for songs in held_out["0"]), held_out
    assert held_out["0"] != held_out["1"], held_out  # other songs held out together, not only renumbered


def test_train_with_cv_from_python_runs_the_folds_of_the_cv_command(tmp_path):
    from audiotrain.models import ChordRecognitionModel
    from audiotrain.models.chord_model import ChordModelConfig
    from audiotrain.recipes.chords import Trainer
    from audiotrain.recipes.chords.config import ChordDataConfig, TrainingConfig

    data = ChordDataConfig(
        demo_songs=4, demo_test_songs=1, demo_seconds=6.0, window_frames=32, cache_dir=str(tmp_path / "cache")
    )
    config = TrainingConfig(batch_size=4, num_epochs=1, save_every=0, progress_bar=False, data=data)
    tiny = ChordModelConfig(d_model=32, n_layers=1, n_heads=2, ff_dim=64)
    trainer = Trainer(model=ChordRecognitionModel(tiny), train_loader=[], config=config, run_dir=tmp_path)
    cv = trainer.train_with_cv(folds=2, run_dir=tmp_path / "cv", log=lambda *a: None)
    assert len(cv.histories) == 2 and all(len(h["train_loss"]) == 1 for h in cv.histories)
    assert set(cv.mean) == set(cv.std) and "| majmin |" in cv.table()
    assert len(list((tmp_path / "cv" / "oof").glob("*.lab"))) == 4  # grouped by song: each scored once
    state = json.loads(
        (tmp_path / "cv" / "fold0" / "checkpoints" / "best" / "trainer_state.json").read_text()
    )
    assert state["run_config"]["model"]["d_model"] == 32  # the folds train this Trainer's architecture


@pytest.fixture(scope="module")
def cv_cache(tmp_path_factory):
    """One demo-song and feature cache for the cv runs below."""
    return tmp_path_factory.mktemp("cv_cache")


@pytest.fixture(scope="module")
def plain_cv(cv_cache, tmp_path_factory):
    """A finished 2-fold cv run of the tiny flags (default seed) on `cv_cache`, shared by the tests that
    read it; a test that changes it works on a shutil.copytree of it."""
    run_dir = tmp_path_factory.mktemp("plain_cv") / "cv"
    assert chords.main([*two_fold_cv(cv_cache, run_dir)]) == 0
    return run_dir


@pytest.fixture(scope="module")
def unstopped_cv(cv_cache, tmp_path_factory):
    """A 2-fold cv run of 2 epochs that nothing stopped (with a CSV logger), and its command line: what a
    stopped and resumed one must end as."""
    argv = ["cv", "--folds", "2", *TINY_CV_FLAGS, "--num_epochs", "2", "--data.cache_dir", str(cv_cache)]
    argv += ["--logger", "csv"]
    run_dir = tmp_path_factory.mktemp("unstopped_cv") / "cv"
    assert chords.main([*argv, "--run_dir", str(run_dir)]) == 0
    return run_dir, argv


def _ctrl_c_in_the_first_fold(monkeypatch, fold: int = 0):
    """Ctrl-C (the Trainer's own SIGINT handler) after the first training step of the first fold only (of
    the fold `fold` after it, counting the folds this process trains)."""
    import signal

    from audiotrain.recipes.chords import trainer as chords_trainer
    from audiotrain.train.callbacks import Callback
    from audiotrain.train.trainer import Trainer

    folds = []

    class CtrlCAtFirstStep(Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if trainer.global_step == 1 and len(folds) == fold + 1:
                signal.raise_signal(signal.SIGINT)

    def trainer_with_ctrl_c(*args, callbacks=(), **kwargs):
        folds.append(1)
        return Trainer(*args, callbacks=[*callbacks, CtrlCAtFirstStep()], **kwargs)

    monkeypatch.setattr(chords_trainer, "SharedTrainer", trainer_with_ctrl_c)


def test_ctrl_c_stops_the_whole_cv_and_resume_continues_it(cv_cache, tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "cv"
    argv = ["cv", "--folds", "2", *TINY_CV_FLAGS, "--num_epochs", "2", "--data.cache_dir", str(cv_cache)]
    argv += ["--run_dir", str(run_dir)]
    with monkeypatch.context() as patch:
        _ctrl_c_in_the_first_fold(patch)
        assert chords.main(argv) == 130  # as train, and as a shell reports a command Ctrl-C stopped
    captured = capsys.readouterr()
    out = captured.err  # (a stop: said on stderr)
    # No scores from a partial fold: the stopped fold's model is not transcribed nor scored (a plain run
    # stopped by Ctrl-C still evaluates; README).
    assert "held-out songs" not in captured.out + out and "mir_eval" not in captured.out + out
    assert not (run_dir / "fold0" / "evaluation").exists()
    saved = run_dir / "fold0" / "checkpoints" / "interrupted"
    assert saved.is_dir() and "=== fold 2/2" not in out and not (run_dir / "fold1").exists()
    assert not (run_dir / "cv_scores.json").exists() and "no cv scores were written" in out
    command = out.split("Continue it with:\n")[1].splitlines()[0].strip()
    assert command.endswith(f"--resume {run_dir}") and " cv --folds 2 " in command
    # The printed command continues fold 0 from its checkpoint, then trains fold 1.
    assert chords.main([*argv, "--resume", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "2-fold cross-validation over 4 songs" in out
    history = json.loads((run_dir / "fold0" / "history.json").read_text())
    assert history["epoch"] == [0, 1]
    assert len(list((run_dir / "oof").glob("*.lab"))) == 4
    # Nothing left to do: a second resume keeps both folds and only writes the scores again.
    assert chords.main([*argv, "--resume", str(run_dir)]) == 0
    assert capsys.readouterr().out.count("finished earlier, kept") == 2


def test_a_cv_stopped_in_its_second_fold_keeps_the_first_and_resumes_the_second(
    unstopped_cv, tmp_path, monkeypatch, capsys
):
    """`cv --resume` of a run stopped in fold 1 keeps fold 0 (finished earlier) with its scores, and resumes
    fold 1 from the checkpoint its stop saved rather than training it again: no test would have failed had
    the kept fold been left out of cv_scores.json (fold 1's scores then labelled fold 0, the mean of one
    fold), nor had the stopped fold started over (its checkpoint deleted, a fold's training lost)."""
    unstopped, argv = unstopped_cv
    run_dir = tmp_path / "cv"
    argv = [*argv, "--run_dir", str(run_dir)]
    with monkeypatch.context() as patch:
        _ctrl_c_in_the_first_fold(patch, fold=1)
        assert chords.main(argv) == 130
    assert (run_dir / "fold1" / "checkpoints" / "interrupted").is_dir()
    assert list(json.loads((run_dir / "cv_progress.json").read_text())["done"]) == ["0"]
    capsys.readouterr()
    assert chords.main([*argv, "--resume", str(run_dir)]) == 0
    captured = capsys.readouterr()
    assert "=== fold 0 (1 of 2): finished earlier, kept" in captured.out
    assert "after resuming at epoch 0 (step 1)" in captured.err, captured.err  # fold 1 goes on
    assert "trained 2 epochs" not in captured.err  # ... and neither fold trains from the start
    assert json.loads((run_dir / "cv_scores.json").read_text()) == json.loads(
        (unstopped / "cv_scores.json").read_text()
    )


def _cv_progress(run_dir: Path, config: dict, songs: list[str]) -> Path:
    """A cv_progress.json of a 2-fold cv run in `run_dir` that has finished no fold."""
    run_dir.mkdir()
    path = run_dir / PROGRESS_FILE
    path.write_text(json.dumps({"folds": 2, "songs": songs, "config": config, "done": {}, "trained": {}}))
    return path


def test_a_second_ctrl_c_that_aborts_a_folds_save_still_prints_the_command_that_goes_on(
    unstopped_cv, tmp_path, monkeypatch, capsys
):
    """Ctrl-C in fold 1, then Ctrl-C again as its `interrupted` checkpoint is saved (a user pressing twice):
    the save is aborted and the cv exited 130 with only the 'Save aborted' line, without the `--resume`
    command that a single Ctrl-C prints (the README promises it for a stopped cv). That command keeps
    fold 0 and goes on from fold 1's newest intact checkpoint."""
    import signal

    from audiotrain.train import checkpoint as ckpt

    _, argv = unstopped_cv
    run_dir = tmp_path / "cv"
    argv = [*argv, "--run_dir", str(run_dir)]
    write_checkpoint = ckpt.write_checkpoint

    def pressed_again(path, *args, **kwargs):
        if Path(path).name == "interrupted":
            signal.raise_signal(signal.SIGINT)  # the second Ctrl-C, as the save begins
        return write_checkpoint(path, *args, **kwargs)

    with monkeypatch.context() as patch:
        _ctrl_c_in_the_first_fold(patch, fold=1)
        patch.setattr(ckpt, "write_checkpoint", pressed_again)
        try:
            chords.main(argv)
        except KeyboardInterrupt:  # (SaveAborted: the command ends with status 130, as train's does)
            pass
    err = capsys.readouterr().err
    assert "Save aborted" in err, err
    command = err.split("Continue it with:\n")[-1].splitlines()[0].strip()
    assert command.endswith(f"--resume {run_dir}") and " cv --folds 2 " in command, err
    assert chords.main([*argv, "--resume", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert out.count("finished earlier, kept") == 1 and "2-fold cross-validation over 4 songs" in out


def test_a_cv_resumes_with_other_settings_that_do_not_change_what_a_fold_trains(tmp_path):
    """`cv --resume` may run on another device, with another progress bar, number of loader workers or
    feature cache folder (the same features): only the settings a fold trains with must match."""
    before = TrainingConfig().to_dict()
    path = _cv_progress(tmp_path / "cv", before, ["a", "b", "c"])
    now = TrainingConfig(device="cpu", progress_bar=False).to_dict()
    now["data"] |= {"num_workers": 3, "cache_dir": str(tmp_path / "elsewhere")}
    assert _finished_folds(path, {"folds": 2, "songs": ["a", "b", "c"], "config": now}) == ({}, {})
    now["seed"] += 1
    with pytest.raises(ValueError, match=r"other settings: seed \(0 there, 1 here\)"):
        _finished_folds(path, {"folds": 2, "songs": ["a", "b", "c"], "config": now})


def test_a_cv_resume_on_other_songs_is_refused(tmp_path):
    """The folds depend on the songs: a resume after a song left the data folder would fold the others
    anew and mix those folds' scores with the kept ones."""
    config = TrainingConfig().to_dict()
    path = _cv_progress(tmp_path / "cv", config, ["a", "b", "c"])
    with pytest.raises(ValueError, match="its folds were made of other songs"):
        _finished_folds(path, {"folds": 2, "songs": ["a", "b"], "config": config})


def test_a_cv_resume_without_the_runs_config_names_the_settings_not_only_the_songs(tmp_path):
    """`cv --resume RUN --folds 3` without the `--config` the run was started with read the default demo set
    and was refused with "its folds were made of other songs (...; new: 'patches-song_002', ... and 213
    more); restore the data": the data was there, the settings that chose it were not. Those settings are
    now named first, with the way out (the run's flags and --config, as the command it printed)."""
    before = TrainingConfig(data=ChordDataConfig(demo_songs=6)).to_dict()
    path = _cv_progress(tmp_path / "cv", before, ["a", "b", "c"])
    now = TrainingConfig().to_dict()
    with pytest.raises(ValueError) as caught:
        _finished_folds(path, {"folds": 2, "songs": ["a", "b", "c", "d"], "config": now})
    message = str(caught.value)
    assert "its folds were made of other songs" in message
    assert "with other settings: data.demo_songs (6 there, 224 here)" in message
    assert "resume with the same flags and --config as that run" in message


def test_cv_with_an_absolute_checkpoint_dir_gives_each_fold_its_own_subfolder_and_resumes(
    cv_cache, tmp_path, monkeypatch, capsys
):
    """Every fold shared the absolute folder: fold 1 was refused for fold 0's checkpoints, and the printed
    continue command for fold 0's."""
    run_dir, checkpoints = tmp_path / "cv", tmp_path / "elsewhere"
    argv = ["cv", "--folds", "2", *TINY_CV_FLAGS, "--num_epochs", "2", "--data.cache_dir", str(cv_cache)]
    argv += ["--run_dir", str(run_dir), "--checkpoint_dir", str(checkpoints)]
    with monkeypatch.context() as patch:
        _ctrl_c_in_the_first_fold(patch)
        assert chords.main(argv) == 130
    out = capsys.readouterr().err
    assert (checkpoints / "fold0" / "interrupted").is_dir()
    command = out.split("Continue it with:\n")[1].splitlines()[0].strip()
    assert f"--checkpoint_dir {checkpoints}" in command and command.endswith(f"--resume {run_dir}")
    assert chords.main([*argv, "--resume", str(run_dir)]) == 0, capsys.readouterr().err
    assert "2-fold cross-validation over 4 songs" in capsys.readouterr().out
    assert json.loads((run_dir / "fold0" / "history.json").read_text())["epoch"] == [0, 1]
    assert all((checkpoints / f"fold{k}" / "last").is_dir() for k in range(2))


def test_cv_refuses_a_used_absolute_checkpoint_dir_before_writing_its_run_folder(cv_cache, tmp_path, capsys):
    """Refused only inside fold 0, after cv_progress.json and oof/ were written, the retry with an empty
    --checkpoint_dir that the error advised was refused too (the run folder then held files)."""
    run_dir, used = tmp_path / "cv", tmp_path / "used"
    (used / "fold0" / "last").mkdir(parents=True)
    (used / "fold0" / "last" / "model.safetensors").write_bytes(b"another run's")
    argv = ["cv", "--folds", "2", *TINY_CV_FLAGS, "--data.cache_dir", str(cv_cache)]
    argv += ["--run_dir", str(run_dir)]
    assert chords.main([*argv, "--checkpoint_dir", str(used)]) == 2
    err = capsys.readouterr().err
    assert f"--checkpoint_dir {used}: its fold0/ already holds files" in err, err
    assert "Choose an empty --checkpoint_dir" in err and "cv --resume ITS_RUN_DIR" in err
    assert not run_dir.exists()
    assert (used / "fold0" / "last" / "model.safetensors").read_bytes() == b"another run's"
    # The advised retry goes on in the same --run_dir.
    assert chords.main([*argv, "--checkpoint_dir", str(tmp_path / "fresh")]) == 0, capsys.readouterr().err
    assert all((tmp_path / "fresh" / f"fold{k}" / "last").is_dir() for k in range(2))


def test_cv_leaves_one_song_out_in_as_many_folds_as_songs(cv_cache, tmp_path, capsys):
    """`cv --folds 4` on 4 songs was refused ("4 songs cannot make 4 folds with training songs left"), though
    each fold keeps 3 songs to train and validate on; CLAP's cv and train_with_cv leave one out."""
    argv = ["cv", "--folds", "4", *TINY_CV_FLAGS, "--data.cache_dir", str(cv_cache)]
    assert chords.main([*argv, "--run_dir", str(tmp_path / "cv")]) == 0, capsys.readouterr().err
    assert "4-fold cross-validation over 4 songs" in capsys.readouterr().out
    held_out = [json.loads((tmp_path / "cv" / f"fold{k}" / "config.json").read_text()) for k in range(4)]
    assert sorted(len(run["songs"]["test"]) for run in held_out) == [1, 1, 1, 1]
    assert chords.main([*argv[:2], "5", *argv[3:], "--run_dir", str(tmp_path / "cv5")]) == 2
    assert "4 songs cannot make 5 folds" in capsys.readouterr().err


def test_cv_refuses_a_test_fraction_naming_it_and_the_folds(tmp_path, capsys):
    """`cv --data.test_fraction 0.4` ran, each fold holding out a third of the songs, and recorded 0.4 in
    cv_progress.json and every fold's config.json; a pairs file's split column is refused for that reason."""
    argv = ["cv", "--folds", "3", *TINY_CV_FLAGS, "--data.test_fraction", "0.4"]
    assert chords.main([*argv, "--run_dir", str(tmp_path / "cv")]) == 2
    err = capsys.readouterr().err
    assert "--data.test_fraction 0.4: cv holds out each of its --folds 3 folds in turn" in err, err
    assert not (tmp_path / "cv").exists()


def test_cv_run_folder_is_refused_and_overwrite_replaces_only_its_outputs(
    cv_cache, plain_cv, tmp_path, capsys
):
    run_dir = tmp_path / "cv"
    argv = ["cv", "--folds", "2", *TINY_CV_FLAGS, "--data.cache_dir", str(cv_cache)]
    argv += ["--run_dir", str(run_dir)]
    shutil.copytree(plain_cv, run_dir)  # the finished run of these flags (a copy: this test changes it)
    (run_dir / "notes.txt").write_text("mine")
    (run_dir / "fold7").mkdir()  # a fold of an earlier run with more folds
    (run_dir / "fold0" / "evaluation" / "mine.txt").write_text("mine")  # the user's, inside its folders
    (run_dir / "oof" / "mine.txt").write_text("mine")
    capsys.readouterr()
    assert chords.main(argv) == 2
    err = capsys.readouterr().err
    assert f"--run_dir {run_dir} already holds files" in err and f"--resume {run_dir} " in err, err
    assert chords.main([*argv, "--overwrite"]) == 0
    err = capsys.readouterr().err
    assert "--overwrite: removed the previous run's fold0, fold1, fold7, oof" in err
    kept = "fold0/evaluation/mine.txt, oof/mine.txt"
    assert f"--overwrite: kept what the previous run did not write in {run_dir}: {kept}" in err
    assert (run_dir / "notes.txt").read_text() == "mine" and (run_dir / "cv_scores.json").is_file()
    assert (run_dir / "fold0" / "evaluation" / "mine.txt").is_file() and (
        run_dir / "oof" / "mine.txt"
    ).is_file()
    assert not (run_dir / "fold7").exists()
    # A resume with other settings than the finished folds were trained with is refused, naming them.
    assert chords.main([*argv, "--resume", str(run_dir), "--learning_rate", "0.5"]) == 2
    assert "learning_rate (0.002 there, 0.5 here)" in capsys.readouterr().err
    # So are the settings that make other folds (the seed shuffles the songs into folds; other folds would
    # reuse finished folds with other test songs) or another model or features (the cv mean would mix two).
    for flags, named in (
        (["--seed", "1"], "seed (0 there, 1 here)"),
        (["--model.d_model", "16"], "model.d_model (32 there, 16 here)"),
        (["--features.log_gain", "10"], "features.log_gain (100.0 there, 10.0 here)"),
        (["--folds", "3"], "that cv run has 2 folds, not 3; resume with --folds 2"),
    ):
        assert chords.main([*argv, "--resume", str(run_dir), *flags]) == 2, flags
        assert named in capsys.readouterr().err, flags


def test_cv_out_of_fold_predictions_keep_the_sub_folders(cv_cache, tmp_path, capsys):
    from audiotrain.datasets.chord_demo import generate_demo_songs

    data = tmp_path / "songs"
    for album, seed in (("albumA", 1), ("albumB", 2)):  # the same song names in both albums
        generate_demo_songs(data / album, n_songs=2, seed=seed, song_seconds=6)
    (data / "orphan.wav").write_bytes((data / "albumA" / "song_000.wav").read_bytes())
    run_dir = tmp_path / "cv"
    argv = ["cv", "--data", str(data), "--folds", "2", *TINY_CV_FLAGS, "--data.cache_dir", str(cv_cache)]
    assert chords.main([*argv, "--run_dir", str(run_dir)]) == 0
    oof = sorted(p.relative_to(run_dir / "oof").as_posix() for p in (run_dir / "oof").rglob("*.lab"))
    assert oof == [f"{album}/song_00{i}.lab" for album in ("albumA", "albumB") for i in (0, 1)]
    # The scan's report: on screen, and whole in the run folder (cv said nothing of the files it skipped).
    err = capsys.readouterr().err
    assert "1 audio file without an annotation" in err and "orphan.wav" in err
    assert "orphan.wav" in (run_dir / "data_report.txt").read_text()


def test_cv_copies_no_out_of_fold_lab_that_would_replace_another(cv_cache, tmp_path, monkeypatch, capsys):
    """Song and song, two songs on Linux, held out in two folds: oof/Song.lab, then oof/song.lab. On a
    case-insensitive file system (macOS, Windows, exFAT, an SMB share; stood in for here) the second copy
    replaced the first without a word. Now neither is copied (nor written by a fold's evaluation), and the
    run says so; their scores count."""
    from audiotrain.datasets.chord_demo import generate_demo_songs
    from audiotrain.recipes.chords import evaluate

    data = tmp_path / "songs"
    generate_demo_songs(data, n_songs=4, seed=3, song_seconds=6)
    for old, new in (("song_000", "Song"), ("song_001", "song")):
        for suffix in (".wav", ".lab"):
            (data / f"{old}{suffix}").rename(data / f"{new}{suffix}")
    monkeypatch.setattr(evaluate, "folds_case", lambda folder: True)
    run_dir = tmp_path / "cv"
    argv = ["cv", "--data", str(data), "--folds", "2", *TINY_CV_FLAGS, "--data.cache_dir", str(cv_cache)]
    assert chords.main([*argv, "--run_dir", str(run_dir)]) == 0
    assert sorted(p.name for p in (run_dir / "oof").glob("*.lab")) == ["song_002.lab", "song_003.lab"]
    err = capsys.readouterr().err
    assert f"note: in {run_dir / 'oof'}, the .lab files of 2 songs are not written" in err
    assert "songs Song, song: their outputs would be one file on the case-insensitive file system" in err


def test_folds_by_folder_keep_each_albums_songs_in_one_part():
    from audiotrain.datasets.chord_songs import SongEntry

    songs = [SongEntry(f"artist/album{a}/song{i}", None, None) for a in range(5) for i in range(3)]
    for fold in song_folds(songs, 5, val_fraction=0.25, seed=0, source="test", by="folder"):
        albums = [{s.name.rsplit("/", 1)[0] for s in part} for part in (fold.train, fold.val, fold.test)]
        assert len(albums[2]) == 1 and sum(len(a) for a in albums) == 5  # no album in two parts


@pytest.mark.parametrize("by", ["song", "folder"])
def test_folds_hold_out_two_recordings_sharing_one_annotation_file_together(tmp_path, by):
    """A pairs file may pair two recordings of one take with its one annotation (GuitarSet's _mic and _mix
    share a .jams): by their names alone, a fold could train on one and score the other. Where no file is
    shared, the folds are those of the names."""
    from audiotrain.datasets.chord_songs import SongEntry

    songs = [SongEntry(f"album{i % 6}/s{i}", None, tmp_path / f"s{i}.lab") for i in range(18)]
    songs += [SongEntry("album0/take_mic", None, tmp_path / "take.jams")]
    songs += [SongEntry("album3/take_mix", None, tmp_path / "take.jams")]  # (another album's folder)
    names_alone = [SongEntry(song.name, None, None) for song in songs]
    unshared = [*songs[:-1], SongEntry("album3/take_mix", None, tmp_path / "take_mix.jams")]
    take = {"album0/take_mic", "album3/take_mix"}

    def parts(folds):
        return [[[song.name for song in part] for part in (f.train, f.val, f.test)] for f in folds]

    parted = []
    for seed in range(10):
        by_name = parts(song_folds(names_alone, 4, 0.25, seed, "test", by=by))
        for fold in parts(song_folds(songs, 4, 0.25, seed, "test", by=by)):
            assert sum(bool(take & set(part)) for part in fold) == 1, (seed, fold)  # (one part of each)
        if not any(take <= set(fold[2]) for fold in by_name):
            parted.append(seed)
        assert parts(song_folds(unshared, 4, 0.25, seed, "test", by=by)) == by_name
    assert 0 in parted  # (by name, seed 0 held them out in two folds; 9 or 10 of these 10 did)


def test_the_advice_to_start_a_cv_run_anew_pastes_a_folder_with_a_space_as_one_path(
    cv_cache, tmp_path, capsys
):
    """`cv --resume "my notes"` advised `--run_dir my notes --overwrite`: pasted, `notes` became an input."""
    folder = tmp_path / "my notes"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    argv = ["cv", "--folds", "2", *TINY_CV_FLAGS, "--data.cache_dir", str(cv_cache)]
    assert chords.main([*argv, "--resume", str(folder)]) == 2
    err = capsys.readouterr().err
    advice = err[err.index("pass --run_dir ") + len("pass ") : err.index(" in place of --resume")]
    assert shlex.split(advice) == ["--run_dir", str(folder), "--overwrite"], err


def test_a_cv_run_of_an_older_audiotrain_is_named_so_and_not_offered_overwrite(cv_cache, tmp_path, capsys):
    """A cv run folder of an audiotrain from before cv_progress.json (its cv_scores.json, fold<k>/, oof/) was
    called "files, not a cv run", with --overwrite offered, which deletes its folds and scores."""
    old = tmp_path / "old_cv"
    for fold in ("fold0", "fold1", "oof"):
        (old / fold).mkdir(parents=True)
    (old / "cv_scores.json").write_text('{"folds": [{}, {}], "mean": {"majmin": 0.5}}')
    argv = ["cv", "--folds", "2", *TINY_CV_FLAGS, "--data.cache_dir", str(cv_cache)]
    for how in ("--run_dir", "--resume"):
        assert chords.main([*argv, how, str(old)]) == 2
        err = capsys.readouterr().err
        assert "a cv run of an older audiotrain (cv_scores.json, fold0/, fold1/" in err, err
        assert "--overwrite" not in err and "choose a new --run_dir" in err, err
    assert sorted(p.name for p in old.iterdir()) == ["cv_scores.json", "fold0", "fold1", "oof"]


def test_a_resume_that_cannot_continue_advises_what_the_cv_command_accepts(cv_cache, tmp_path, capsys):
    """It advised --overwrite, which the cv command refuses beside --resume."""
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    argv = ["cv", "--folds", "2", *TINY_CV_FLAGS, "--data.cache_dir", str(cv_cache)]
    assert chords.main([*argv, "--resume", str(folder)]) == 2
    err = capsys.readouterr().err
    advice = f"pass --run_dir {folder} --overwrite in place of --resume"
    assert "not a cv run folder" in err and advice in err, err
    as_advised = [*argv, "--run_dir", str(folder), "--overwrite"]
    assert chords.main(as_advised) == 0
    assert (folder / "notes.txt").read_text() == "mine" and (folder / "cv_scores.json").is_file()


def test_a_cv_run_resumes_on_its_own_folds_after_songs_are_added_or_the_split_changed(
    cv_cache, tmp_path, monkeypatch, capsys
):
    """A cv run on a data folder is resumed on the songs cv_progress.json lists, in its order: its folds.
    It was refused when a song had been added since, and for a run from before each song's part was kept as
    songs come and go (its songs listed in another order): the folds would have been others."""
    from audiotrain.datasets.chord_demo import generate_demo_songs
    from audiotrain.datasets.chord_songs import split_songs_shuffled
    from audiotrain.recipes.chords import data as chords_data

    data = tmp_path / "songs"
    generate_demo_songs(data, n_songs=5, seed=9, song_seconds=6)
    argv = ["cv", "--data", str(data), "--folds", "2", *TINY_CV_FLAGS, "--num_epochs", "2"]
    argv += ["--data.cache_dir", str(cv_cache)]
    stopped, straight = tmp_path / "stopped", tmp_path / "straight"
    with monkeypatch.context() as patch:  # the split (and so the order of the songs) of the versions before
        patch.setattr(
            chords_data,
            "split_songs",
            lambda songs, val, test, seed, by, pattern: split_songs_shuffled(songs, val, test, seed),
        )
        assert chords.main([*argv, "--run_dir", str(straight)]) == 0
        _ctrl_c_in_the_first_fold(patch)
        assert chords.main([*argv, "--run_dir", str(stopped)]) == 130
    recorded = json.loads((stopped / "cv_progress.json").read_text())["songs"]
    today, _ = chords_data.folder_splits(ChordDataConfig(data_dir=str(data)), seed=0)
    assert recorded != [song.name for song in (*today.train, *today.val, *today.test)]  # (listed otherwise)
    for suffix in (".wav", ".lab"):
        (data / f"added{suffix}").write_bytes((data / f"song_001{suffix}").read_bytes())
    capsys.readouterr()
    assert chords.main([*argv, "--run_dir", str(stopped), "--resume", str(stopped)]) == 0
    captured = capsys.readouterr()
    assert f"1 song added to {data} since is not used" in captured.err, captured.err
    assert "over 5 songs" in captured.out, captured.out
    assert json.loads((stopped / "cv_progress.json").read_text())["songs"] == recorded
    for k in (0, 1):  # the folds it started with, fold 0 going on from its checkpoint exactly
        a, b = (json.loads((run / f"fold{k}" / "history.json").read_text()) for run in (stopped, straight))
        assert a["train_loss"] == b["train_loss"] and a["val_loss"] == b["val_loss"], k
    assert not (stopped / "oof" / "added.lab").exists()


def test_a_cv_stopped_in_a_folds_evaluation_resumes_by_scoring_that_fold(
    unstopped_cv, tmp_path, monkeypatch, capsys
):
    """The printed `cv --resume` failed with "--num_epochs 2 leaves none to train": the stopped fold had
    finished training. It now scores that fold's checkpoint without training again, then trains the rest,
    and the cv scores are those of a cv run that was never stopped. The fold's test scores go to its own
    logger run, as an unstopped fold's do (they were not sent: no checkpoint named the logger runs)."""
    import signal

    from audiotrain.recipes.chords import train as chords_train

    from test_recipe_kills import _test_rows

    unstopped, argv = unstopped_cv
    evaluate_held_out = chords_train._evaluate_held_out

    def sigterm_then_evaluate(*args, **kwargs):
        signal.raise_signal(signal.SIGTERM)
        return evaluate_held_out(*args, **kwargs)

    run_dir = tmp_path / "cv"
    argv += ["--run_dir", str(run_dir)]
    with monkeypatch.context() as patch:
        patch.setattr(chords_train, "_evaluate_held_out", sigterm_then_evaluate)
        assert chords.main(argv) == 143
    fold0 = run_dir / "fold0"
    # Relative to the fold's folder: the run folder may be resumed from another working folder.
    assert json.loads((run_dir / "cv_progress.json").read_text())["trained"] == {"0": "checkpoints/best"}
    history = json.loads((fold0 / "history.json").read_text())
    (fold0 / "history.json").unlink()  # as a stop just before it was written leaves the fold
    capsys.readouterr()
    assert chords.main([*argv, "--resume", str(run_dir)]) == 0
    captured = capsys.readouterr()
    assert (
        f"=== fold 0 (1 of 2): trained earlier, its held-out songs are scored now ({fold0})" in captured.out
    )
    assert captured.err.count("trained 2 epochs") == 1  # fold 1 alone trains
    assert "test scores are not sent" not in captured.err, captured.err
    assert [p.name for p in (fold0 / "csv").iterdir()] == ["version_0"]
    expected = _test_rows(unstopped / "fold0" / "csv" / "version_0" / "metrics.csv")
    assert expected and _test_rows(fold0 / "csv" / "version_0" / "metrics.csv") == expected
    assert json.loads((fold0 / "history.json").read_text()) == history  # from its last checkpoint
    assert json.loads((run_dir / "cv_scores.json").read_text()) == json.loads(
        (unstopped / "cv_scores.json").read_text()
    )
    assert sorted(p.name for p in (run_dir / "oof").glob("*.lab")) == sorted(
        p.name for p in (unstopped / "oof").glob("*.lab")
    )


def two_fold_cv(cv_cache, run_dir) -> list[str]:
    """The flags of a tiny two-fold cv of the demo into `run_dir`, its features cached in `cv_cache`."""
    return [
        "cv",
        "--folds",
        "2",
        *TINY_CV_FLAGS,
        "--data.cache_dir",
        str(cv_cache),
        "--run_dir",
        str(run_dir),
    ]


@pytest.mark.slow
def test_evaluate_of_a_demo_cv_fold_never_scores_the_whole_cache(cv_cache, plain_cv, tmp_path, capsys):
    """`evaluate --checkpoint CV/fold0` (no --data) scored every song of every cached demo set, training songs
    among them, as the fold's held-out songs: the fold recorded the cache folder as its demo test set. And
    `evaluate --checkpoint CV` said config.json was missing before it said it was a cv run."""
    run_dir = tmp_path / "cv"
    shutil.copytree(plain_cv, run_dir)  # a finished two_fold_cv run (a copy: this test changes it)
    fold = run_dir / "fold0"
    record = json.loads((fold / "config.json").read_text())
    assert "demo_test_set" not in record
    for given in (fold, fold / "checkpoints" / "best"):
        capsys.readouterr()
        assert chords.main(["evaluate", "--checkpoint", str(given), "-o", str(tmp_path / "ev")]) == 2
        err = capsys.readouterr().err
        assert "--data is needed" in err and "cross-validation fold" in err and "scoring" not in err, err
        assert record["songs"]["test"][0] in err
    assert not (tmp_path / "ev").exists()
    # A fold written before the fix, which recorded the cache folder: that folder is not scored either.
    record["demo_test_set"] = str(cv_cache / "demo" / "chords")
    (fold / "config.json").write_text(json.dumps(record))
    assert chords.main(["evaluate", "--checkpoint", str(fold)]) == 2
    assert f"records {cv_cache / 'demo' / 'chords'}" in capsys.readouterr().err
    # The cv run folder itself: said first, not a missing config.json.
    assert chords.main(["evaluate", "--checkpoint", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "is a cross-validation run" in err and "fold0" in err and "config.json" not in err, err


def test_folds_in_a_config_file_is_named_as_the_folds_flag(tmp_path, capsys):
    """It was "unknown field 'folds'" and the list of fields, without a word of --folds."""
    file = tmp_path / "cv.yaml"
    file.write_text("preset: quick_test\nfolds: 3\n")
    status = chords.main(["cv", "--config", str(file), "--run_dir", str(tmp_path / "cv")])
    err = capsys.readouterr().err
    assert status == 2 and "unknown field 'folds'" in err
    assert "the number of folds is the --folds flag of cv, not a --config setting" in err


def test_a_cv_runs_record_repeats_its_settings_as_a_config_file(unstopped_cv, tmp_path, monkeypatch, capsys):
    """A cv run folder holds no config.json: `cv --config CV/cv_progress.json` was refused as "does not look
    like a config file ... (a run's settings are in its config.json)", and `--config CV` named no file."""
    from types import SimpleNamespace

    from audiotrain.recipes.chords import cv

    run_dir, _ = unstopped_cv
    recorded = json.loads((run_dir / PROGRESS_FILE).read_text())["config"]
    settings = []

    def recorded_cv(config, run_dir, folds, **options):  # (trains nothing)
        settings.append(config)
        return SimpleNamespace(run_dir=run_dir)

    monkeypatch.setattr(cv, "run_cross_validation", recorded_cv)
    repeat = ["cv", "--folds", "2", "--run_dir", str(tmp_path / "again")]
    assert chords.main([*repeat, "--config", str(run_dir / PROGRESS_FILE)]) == 0, capsys.readouterr().err
    assert [config.to_dict() for config in settings] == [recorded]
    assert recorded["num_epochs"] == 2 and recorded["logger"]["names"] == "csv"  # (not the defaults)
    assert chords.main([*repeat, "--config", str(run_dir)]) == 2
    assert f"pass the file in it: {run_dir / PROGRESS_FILE}" in capsys.readouterr().err


def test_a_damaged_done_record_is_refused_by_name_before_any_fold_trains(
    cv_cache, plain_cv, tmp_path, capsys
):
    """cv --resume put cv_progress.json's kept fold scores into cv_scores.json as they were: -5 for majmin
    as -500 %, a metric deleted from a fold as a row missing from the table, and a fold recorded as a number
    crashed the summary with a raw TypeError after the remaining fold had trained, at every later resume."""
    run_dir = tmp_path / "cv"
    argv = two_fold_cv(cv_cache, run_dir)
    shutil.copytree(plain_cv, run_dir)  # the finished run of these flags (a copy: this test changes it)
    capsys.readouterr()
    record = run_dir / "cv_progress.json"
    progress = json.loads(record.read_text())
    scores = progress["done"]["0"]
    damaged = [
        (0.5, "done.0 is a float, not an object of scores by metric"),
        ({**scores, "majmin": -5}, "done.0.majmin is -5, not a score from 0 to 1"),
        ({**scores, "majmin": 1e308}, "done.0.majmin is 1e+308, not a score from 0 to 1"),
        ({**scores, "mirex": 1.5}, "done.0.mirex is 1.5, not a score from 0 to 1"),  # (150 %)
        ({**scores, "root": "0.5"}, "done.0.root is '0.5', not a score from 0 to 1"),
        ({k: v for k, v in scores.items() if k != "sevenths"}, "done.0: sevenths missing"),
        ({}, "done.0: majmin, majmin_inv, mirex, root, sevenths"),
    ]
    outputs = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p != record}
    for entry, expected in damaged:
        record.write_text(json.dumps({**progress, "done": {**progress["done"], "0": entry}}))
        assert chords.main([*argv, "--resume", str(run_dir)]) == 2
        captured = capsys.readouterr()
        assert f"{record}: {expected}" in captured.err, captured.err
        assert "=== fold" not in captured.out and "Traceback" not in captured.err
    record.write_text(json.dumps({**progress, "done": {**progress["done"], "7": scores}}))
    assert chords.main([*argv, "--resume", str(run_dir)]) == 2
    assert "done.7: '7' is not a fold of this 2-fold run (0 to 1)" in capsys.readouterr().err
    record.write_text(json.dumps({**progress, "folds": True}))  # ("resume with --folds True" before)
    assert chords.main([*argv, "--resume", str(run_dir)]) == 2
    assert f"{record}: folds is True, not a number of folds" in capsys.readouterr().err
    # A checkpoint recorded for a fold trained but not scored: "No such file or directory: .../fold1/x/..."
    record.write_text(json.dumps({**progress, "trained": {"1": "x"}}))
    assert chords.main([*argv, "--resume", str(run_dir)]) == 2
    assert f"{record}: trained.1 is 'x', which is no checkpoint of fold1/" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p != record} == outputs
    # A score over no frame is NaN, recorded as null: kept, and the mean is over the folds that have one.
    record.write_text(
        json.dumps({**progress, "done": {**progress["done"], "0": {**scores, "sevenths": None}}})
    )
    assert chords.main([*argv, "--resume", str(run_dir)]) == 0, capsys.readouterr().err
    summary = json.loads((run_dir / "cv_scores.json").read_text())
    assert summary["folds"][0]["sevenths"] is None and summary["folds_scored"]["sevenths"] == 1
    assert summary["mean"]["sevenths"] == progress["done"]["1"]["sevenths"]


def test_cv_outputs_name_every_fold_folder_of_an_earlier_cv_run(tmp_path):
    """--overwrite removes the fold folders of an earlier cv run however many folds it had (fold12/ too),
    and no folder a cv run does not make."""
    for name in ("fold0", "fold12", "folds", "fold1.bak"):
        (tmp_path / name).mkdir()
    assert cv_outputs(tmp_path) == ["fold0", "fold12", *CV_OUTPUTS]


def test_a_cv_run_given_no_folder_is_named_by_rank_0_on_every_rank_whatever_its_clock(tmp_path, monkeypatch):
    """Under a launcher, each rank named the default cv run folder (``runs/chords-cv-<date>-<time>``, and
    ``train_with_cv``'s ``<run_dir>/cv-<date>-<time>``) from its own clock: ranks whose clocks read different
    seconds wrote one cv run into two folders. Here rank 0 runs at 12:00:00 and then rank 1 at 12:00:01,
    rank 1 receiving what rank 0 broadcast, in order, as in a job."""
    import time

    from audiotrain.distributed import collectives
    from audiotrain.models import ChordRecognitionModel
    from audiotrain.models.chord_model import ChordModelConfig
    from audiotrain.recipes.chords import Trainer, cv
    from audiotrain.recipes.chords.config import TrainingConfig

    monkeypatch.chdir(tmp_path)
    strftime, second, rank, sent, used = time.strftime, [0], [0], [], []

    def broadcast_from_main(value):
        if rank[0] == 0:
            sent.append(value)
            return value
        return sent.pop(0)

    class Stopped(Exception):
        pass

    def run_cross_validation(config, run_dir, **kwargs):
        used.append((rank[0], Path(run_dir)))
        raise Stopped  # (the folder is all that is asked)

    monkeypatch.setattr(
        time, "strftime", lambda f, t=None: strftime(f, (2026, 1, 2, 12, 0, second[0], 0, 2, 0))
    )
    monkeypatch.setattr(collectives, "is_main_process", lambda: rank[0] == 0)
    monkeypatch.setattr(collectives, "broadcast_from_main", broadcast_from_main)
    monkeypatch.setattr(cv, "run_cross_validation", run_cross_validation)
    tiny = ChordModelConfig(d_model=32, n_layers=1, n_heads=2, ff_dim=64)
    trainer = Trainer(
        model=ChordRecognitionModel(tiny), train_loader=[], config=TrainingConfig(), run_dir=tmp_path / "r"
    )
    for rank[0], second[0] in ((0, 0), (1, 1)):
        with pytest.raises(Stopped):
            chords.main(["cv", "--folds", "2", *TINY_CV_FLAGS, "--data.cache_dir", str(tmp_path / "cache")])
        with pytest.raises(Stopped):
            trainer.train_with_cv(folds=2, log=lambda *a: None)
    assert used == [
        (0, Path("runs/chords-cv-20260102-120000")),
        (0, tmp_path / "r" / "cv-20260102-120000"),
        (1, Path("runs/chords-cv-20260102-120000")),
        (1, tmp_path / "r" / "cv-20260102-120000"),
    ]


def test_train_with_cv_cross_validates_the_songs_of_the_data_dir_it_is_given(tmp_path, monkeypatch):
    """train_with_cv(data_dir=...) cross-validates that folder's songs (not config.data.data_dir's, nor the
    demo songs), the rest of the config as it is; a data_dir that is no folder is refused before any run."""
    from audiotrain.models import ChordRecognitionModel
    from audiotrain.models.chord_model import ChordModelConfig
    from audiotrain.recipes.chords import Trainer, cv
    from audiotrain.recipes.chords.config import TrainingConfig

    asked = []
    monkeypatch.setattr(cv, "run_cross_validation", lambda config, run_dir, **kwargs: asked.append(config))
    tiny = ChordModelConfig(d_model=32, n_layers=1, n_heads=2, ff_dim=64)
    config = TrainingConfig(num_epochs=3)
    trainer = Trainer(ChordRecognitionModel(tiny), train_loader=[], config=config, run_dir=tmp_path)
    songs = tmp_path / "songs"
    songs.mkdir()
    trainer.train_with_cv(folds=2, data_dir=songs, run_dir=tmp_path / "cv")
    (used,) = asked
    assert used.data.data_dir == str(songs) and used.num_epochs == 3
    with pytest.raises(
        NotADirectoryError, match=r"Trainer.train_with_cv: data_dir .*missing is not a folder"
    ):
        trainer.train_with_cv(folds=2, data_dir=tmp_path / "missing", run_dir=tmp_path / "cv2")
    assert len(asked) == 1


def test_the_advice_to_start_a_cv_run_anew_in_a_folder_named_with_a_dash_pastes_back(
    tmp_path, capsys, monkeypatch
):
    """A cv --resume of a folder named '-notes' (given as --resume=-notes) advised '--run_dir -notes
    --overwrite', which pasted back said 'argument --run_dir: expected one argument'."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-notes").mkdir()
    assert chords.main(["cv", "--preset", "quick_test", "--resume=-notes"]) == 2
    err = capsys.readouterr().err
    assert "pass --run_dir ./-notes --overwrite in place of --resume" in err, err


def test_a_fold_with_no_song_to_spare_for_validation_says_why_not_that_val_fraction_is_0(
    cv_cache, tmp_path, capsys
):
    """`cv --folds 2` on 2 songs trains each fold on the one song it does not hold out, without validation;
    the run said "no validation songs (data.val_fraction 0)", a setting the user never gave (0.15 was)."""
    argv = ["cv", "--folds", "2", *TINY_CV_FLAGS, "--data.demo_songs", "2", "--data.cache_dir", str(cv_cache)]
    assert chords.main([*argv, "--run_dir", str(tmp_path / "cv")]) == 0
    err = capsys.readouterr().err
    assert err.count("1 train / 0 val / 1 test songs") == 2, err
    assert "data.val_fraction 0)" not in err, err
    why = "1 song left to train on, too few to spare one for data.val_fraction 0.15: training keeps at least"
    assert f"no validation songs ({why} one): no early stopping" in err, err


def test_a_cv_run_repeated_from_its_cv_progress_json_runs_its_folds_and_gives_its_scores(plain_cv, tmp_path):
    """--config RUN/cv_progress.json 'repeats it' (--help), but ran the default 5 folds where the record says
    3, and gave other scores with nothing said; a paper's reader repeating a result got another one."""
    run_dir, replay = plain_cv, tmp_path / "replay"  # (the shared run, only read)
    assert chords.main(["cv", "--config", str(run_dir / "cv_progress.json"), "--run_dir", str(replay)]) == 0
    assert sorted(p.name for p in replay.glob("fold*")) == ["fold0", "fold1"]
    scores = [json.loads((folder / "cv_scores.json").read_text()) for folder in (run_dir, replay)]
    assert scores[0]["folds"] == scores[1]["folds"]


def test_a_diverging_fold_stops_the_cv_with_an_error_in_the_recipes_flags(tmp_path, capsys):
    """``cv --learning_rate 1e30``: the non-finite stop in a fold ended in a raw traceback (exit status 1),
    advising the Trainer's settings; it is an error line in cv's flags, naming the fold's checkpoint."""
    run_dir = tmp_path / "cv"
    argv = ["cv", "--folds", "2", *TINY_CV_FLAGS, "--data.cache_dir", str(tmp_path / "cache")]
    argv += ["--learning_rate", "1e30", "--batch_size", "1", "--data.window_frames", "8", "--num_epochs", "3"]
    argv += ["--data.demo_seconds", "12"]  # (over 10 steps an epoch: the stop comes in the first)
    assert chords.main([*argv, "--run_dir", str(run_dir)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "Traceback" not in err and "gradient_clip_val" not in err and "--init_from" not in err
    assert re.search(r"error: training stopped: \d+ optimizer steps in a row had a non-finite loss", err)
    assert "Lower --learning_rate (this run's: 1e+30), set --gradient_clip" in err
    assert f"The weights before those steps are in {run_dir / 'fold0' / 'checkpoints' / 'nonfinite'}" in err


def test_cv_help_says_that_seed_draws_the_folds_and_where_each_folds_songs_are_listed(capsys):
    """A researcher running cv with --seed 0, 1 and 2 to report the spread over seeds got other folds each
    time: --help called --seed the 'seed of weights, data order, windows and augmentation' and said nothing
    of the folds, nor where the songs each fold held out are listed."""
    assert chords.main(["cv", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--seed draws the folds too" in text, text
    assert "RUN/fold<k>/config.json, under songs: train, val and test" in text, text


def _tiny_regressor():
    """A create_trainer module of a user's own (one linear layer, an MSE loss), for the refusals below."""
    from audiotrain import TrainModule

    import mlx.nn as nn

    class Tiny(TrainModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(2, 1)

        def __call__(self, x):
            return self.net(x)

        def compute_loss(self, batch):
            x, y = batch
            return nn.losses.mse_loss(self.net(x), y)

    return Tiny()


def test_train_with_cv_overwrite_refuses_a_chords_cv_run_and_removes_nothing(unstopped_cv, tmp_path):
    """`train_with_cv(run_dir=..., overwrite=True)` pointed at the folder of a `chords cv` run took its
    folds for its own earlier run: it removed every fold's checkpoints, history.json and cv_scores.json,
    wrote its own beside the chords run's config.json, evaluation/ and cv_progress.json, and left fold 3 of a
    4-fold run without a model (chords cv --overwrite refuses a train_with_cv folder as 'a run of another
    kind'). It is refused now, naming the chords run's record, and the folder is as it was."""
    import shutil

    from audiotrain import create_trainer
    from audiotrain.data import DataLoader

    run_dir = tmp_path / "cv"
    shutil.copytree(unstopped_cv[0], run_dir)
    before = {p.relative_to(run_dir): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    samples = [(np.ones(2, np.float32) * i, np.ones(1, np.float32)) for i in range(8)]
    trainer = create_trainer(_tiny_regressor(), config="quick_test", num_epochs=1)
    with pytest.raises(FileExistsError, match="cv_progress.json") as refused:
        trainer.train_with_cv(
            DataLoader(samples, batch_size=2), folds=2, run_dir=run_dir, overwrite=True, log=lambda s: None
        )
    assert "nothing was removed" in str(refused.value)
    after = {p.relative_to(run_dir): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    assert after == before


def test_create_trainer_train_overwrite_refuses_a_chords_run_folder_and_removes_nothing(
    unstopped_cv, tmp_path
):
    """`train(overwrite=True)` in the folder of a chords run (a cv fold's, as a `chords train` run's) removed
    its checkpoints and history.json as 'the previous run's', though the README says a checkpoint there that
    no create_trainer run saved is refused by name, not removed."""
    import shutil

    from audiotrain import create_trainer
    from audiotrain.data import DataLoader

    run_dir = tmp_path / "chords_run"
    shutil.copytree(unstopped_cv[0] / "fold0", run_dir)
    before = {p.relative_to(run_dir): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    samples = [(np.ones(2, np.float32) * i, np.ones(1, np.float32)) for i in range(8)]
    trainer = create_trainer(_tiny_regressor(), config="quick_test", num_epochs=1, run_dir=run_dir)
    with pytest.raises(FileExistsError, match="config.json") as refused:
        trainer.train(DataLoader(samples, batch_size=2), DataLoader(samples, batch_size=2), overwrite=True)
    assert "nothing was removed" in str(refused.value)
    # Without overwrite the refusal is the same, but says nothing of an overwrite no one asked for
    with pytest.raises(FileExistsError, match="holds a run of another kind") as refused:
        trainer.train(DataLoader(samples, batch_size=2), DataLoader(samples, batch_size=2))
    assert "overwrite" not in str(refused.value)
    after = {p.relative_to(run_dir): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    assert after == before
