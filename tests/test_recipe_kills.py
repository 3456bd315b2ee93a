"""A recipe process killed outright (SIGKILL, the OOM killer, power loss: no handler runs, nothing is said)
at a chosen point, in a child process, and what the next command then makes of what it left. (Stop signals
a run can answer: tests/test_recipe_stops.py.)"""

import json
import subprocess
import sys
from pathlib import Path

from audiotrain._text import plural
from audiotrain.recipes.chords import cli as chords

import pytest
from built_once import built_once
from child_processes import child_env
from test_chords_cv import TINY_CV_FLAGS
from test_recipe_chords import TINY_FLAGS as CHORD_FLAGS

# One process: the child has no conftest to keep the recipes from starting one per core.
TINY_FLAGS = [*CHORD_FLAGS, "--processes", "1"]
REPO = Path(__file__).resolve().parents[1]

#: Runs ``chords.main(argv)`` with the process killed (``os._exit``: no handler, no flush, no cleanup) as
#: the function of `audiotrain.recipes.chords.train` named first is called.
KILLED_AT = """
import os, sys
from audiotrain.recipes.chords import cli, train
setattr(train, sys.argv[1], lambda *args, **kwargs: os._exit(137))
sys.exit(cli.main(sys.argv[2:]))
"""
#: Right after training ended: as the held-out evaluation starts, and (earlier still) as the run is about
#: to record that its training ended.
EVALUATION, TRAINED_RECORD = "_evaluate_held_out", "_write_trained_record"


def _killed_at(where: str, argv: list[str]) -> None:
    env = child_env()
    done = subprocess.run(
        [sys.executable, "-c", KILLED_AT, where, *argv], env=env, capture_output=True, text=True
    )
    assert done.returncode == 137, done.stderr[-2000:]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """The demo songs and their features, shared by the runs below and by both xdist workers: every test here
    is ``serial`` (no other test runs beside it), so no two runs write in the cache at once."""
    return built_once(tmp_path_factory, "kills_cache", lambda folder: None)[0]


def test_a_cv_killed_between_a_folds_training_and_its_evaluation_resumes_by_scoring_it(
    cache, tmp_path, capsys
):
    """``cv --resume RUN`` failed on every try with "--num_epochs 2 leaves none to train": only a stop
    signal recorded a fold as trained, and a SIGKILL runs no handler. The fold's folder now says so as its
    training ends, and the resumed cv scores are those of a cv run that was never killed."""
    argv = [
        "cv",
        "--folds",
        "2",
        *TINY_CV_FLAGS,
        "--processes",
        "1",
        "--num_epochs",
        "2",
        "--data.cache_dir",
        str(cache),
    ]
    unstopped = tmp_path / "unstopped"
    assert chords.main([*argv, "--run_dir", str(unstopped)]) == 0
    run_dir = tmp_path / "cv"
    argv += ["--run_dir", str(run_dir)]
    _killed_at(EVALUATION, argv)
    assert json.loads((run_dir / "cv_progress.json").read_text())["trained"] == {}  # (no handler ran)
    capsys.readouterr()
    assert chords.main([*argv, "--resume", str(run_dir)]) == 0
    captured = capsys.readouterr()
    assert "=== fold 0 (1 of 2): trained earlier, its held-out songs are scored now" in captured.out
    assert captured.err.count("trained 2 epochs") == 1  # fold 1 alone trains
    assert json.loads((run_dir / "cv_scores.json").read_text()) == json.loads(
        (unstopped / "cv_scores.json").read_text()
    )


@pytest.fixture(scope="module")
def unstopped_run(cache, tmp_path_factory):
    """A run of the tiny flags that nothing stopped: what a killed and resumed one must end as. Shared by the
    parametrized test below (both kill points end as this same run), built once for both xdist workers (xdist
    may give the two kill points to different workers); only read."""

    def build(folder: Path) -> None:
        run_dir = folder / "unstopped"
        assert chords.main([*TINY_FLAGS, "--data.cache_dir", str(cache), "--run_dir", str(run_dir)]) == 0

    return built_once(tmp_path_factory, "kills_unstopped", build)[0] / "unstopped"


@pytest.mark.parametrize("where", [EVALUATION, TRAINED_RECORD])
def test_a_run_killed_before_its_evaluation_finishes_it_on_resume(
    where, cache, unstopped_run, tmp_path, capsys
):
    """The same command pointed at ``--resume RUN/checkpoints/last``, which refused ("leaves none to
    train") and named only predict. The resume now does what the run had left: its held-out evaluation,
    the same as an uninterrupted run's."""
    unstopped = unstopped_run
    run_dir = tmp_path / "run"
    argv = [*TINY_FLAGS, "--data.cache_dir", str(cache), "--run_dir", str(run_dir)]
    _killed_at(where, argv)
    assert not (run_dir / "evaluation").exists()
    capsys.readouterr()
    assert chords.main([*argv, "--resume", str(run_dir / "checkpoints" / "last")]) == 0
    out = capsys.readouterr().err
    assert "its training ended earlier; its held-out songs are scored now" in out
    assert "trained 2 epochs" not in out  # nothing was trained again
    scores, expected = (
        json.loads((d / "evaluation" / "scores.json").read_text()) for d in (run_dir, unstopped)
    )
    assert scores["pooled"] == expected["pooled"]
    history, expected = (json.loads((d / "history.json").read_text()) for d in (run_dir, unstopped))
    assert {k: v for k, v in history.items() if k != "time"} == {
        k: v for k, v in expected.items() if k != "time"
    }
    # A finished run's resume is refused as before (scoring again would replace its evaluation), now
    # naming evaluate too; with more epochs it is a resume that trains.
    assert chords.main([*argv, "--resume", str(run_dir / "checkpoints" / "last")]) == 2
    err = capsys.readouterr().err
    assert "leaves none to train" in err and "evaluate --checkpoint" in err and "--test_songs_of" in err
    capsys.readouterr()
    more = [
        *argv,
        "--num_epochs",
        "3",
        "--resume",
        str(run_dir / "checkpoints" / "last"),
        "--save_every",
        "1",
    ]
    assert chords.main(more) == 0
    assert "trained to epoch 3" in capsys.readouterr().err
    assert json.loads((run_dir / "trained.json").read_text())["num_epochs"] == 3


def test_a_run_with_a_relative_checkpoint_dir_killed_before_its_trained_record_finishes_on_resume(
    cache, tmp_path, capsys
):
    """Killed between its last checkpoint and trained.json, a run trained with ``--checkpoint_dir ck`` was
    refused by ``--resume RUN/ck/last`` ("leaves none to train"): the look for a ``last`` that had trained
    every epoch went to RUN/checkpoints, whatever folder the run saved in. It now looks in the run's
    --checkpoint_dir, and scores ``ck/best`` (the checkpoint an unstopped run scores), not ``ck/last``."""
    run_dir = tmp_path / "run"
    argv = [*TINY_FLAGS, "--data.cache_dir", str(cache), "--run_dir", str(run_dir), "--checkpoint_dir", "ck"]
    _killed_at(TRAINED_RECORD, argv)
    assert not (run_dir / "trained.json").exists() and (run_dir / "ck" / "best").is_dir()
    capsys.readouterr()
    assert chords.main([*argv, "--resume", str(run_dir / "ck" / "last")]) == 0
    err = capsys.readouterr().err
    assert f"its held-out songs are scored now with {run_dir / 'ck' / 'best'}" in err, err
    assert "trained 2 epochs" not in err  # nothing was trained again
    scored = json.loads((run_dir / "evaluation" / "scores.json").read_text())["scored"]
    assert Path(scored["checkpoint"]).parts[-2:] == ("ck", "best")
    assert not (run_dir / "checkpoints").exists()


def test_a_cv_fold_with_a_relative_checkpoint_dir_killed_before_its_trained_record_is_scored_on_resume(
    cache, tmp_path, capsys
):
    """cv's resume looked for a killed fold's trained checkpoint in FOLD/checkpoints too: with
    ``--checkpoint_dir ck`` the fold was trained again from its ``last`` (refused: none left to train).
    It is now scored from FOLD/ck, as a fold saved in checkpoints/ is."""
    run_dir = tmp_path / "cv"
    argv = ["cv", "--folds", "2", *TINY_CV_FLAGS, "--processes", "1", "--num_epochs", "2"]
    argv += ["--data.cache_dir", str(cache), "--run_dir", str(run_dir), "--checkpoint_dir", "ck"]
    _killed_at(TRAINED_RECORD, argv)
    assert not (run_dir / "fold0" / "trained.json").exists() and (run_dir / "fold0" / "ck" / "last").is_dir()
    capsys.readouterr()
    assert chords.main([*argv, "--resume", str(run_dir)]) == 0
    captured = capsys.readouterr()
    assert "=== fold 0 (1 of 2): trained earlier, its held-out songs are scored now" in captured.out
    assert captured.err.count("trained 2 epochs") == 1  # fold 1 alone trains
    assert len(json.loads((run_dir / "cv_scores.json").read_text())["folds"]) == 2


def test_a_resume_killed_in_its_evaluation_scores_it_though_an_earlier_evaluation_is_there(
    cache, tmp_path, capsys
):
    """A run resumed in its own folder to train further keeps its earlier evaluation in evaluation/ until its
    own replaces it. Killed in that evaluation, the resumed run's --resume was refused ("leaves none to
    train") as if the earlier scores, of other weights, were its own, and `runs` listed it finished with
    them. Its --resume now scores the weights its training ended with. (No validation songs: the ``last``
    checkpoint is the one evaluated, and it moves on as the resume trains.)"""
    from audiotrain.__main__ import main

    run_dir = tmp_path / "run"
    argv = [
        *TINY_FLAGS,
        "--data.cache_dir",
        str(cache),
        "--data.val_fraction",
        "0",
        "--run_dir",
        str(run_dir),
    ]
    assert chords.main([*argv, "--num_epochs", "1"]) == 0
    earlier = json.loads((run_dir / "evaluation" / "scores.json").read_text())["scored"]
    resume = [*argv, "--num_epochs", "2", "--resume", str(run_dir / "checkpoints" / "last")]
    _killed_at(EVALUATION, resume)
    trained = json.loads((run_dir / "trained.json").read_text())
    assert trained["num_epochs"] == 2 and (run_dir / "evaluation" / "confusion_matrix.png").is_file()
    capsys.readouterr()
    assert main(["runs", str(run_dir)]) == 0
    listed = capsys.readouterr().out
    assert listed.splitlines()[1].split()[:3] == ["run", "chords", "interrupted"], listed
    assert "majmin" not in listed
    trained_before = plural(earlier["epoch"], "epoch")
    assert f"scored checkpoints/last saved after {trained_before}, before this run trained on" in listed
    assert chords.main(resume) == 0
    assert "its held-out songs are scored now" in capsys.readouterr().err
    scored = json.loads((run_dir / "evaluation" / "scores.json").read_text())["scored"]
    assert (scored["epoch"], scored["step"]) == (2, trained["global_step"])
    assert main(["runs", str(run_dir)]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[:3] == ["run", "chords", "finished"]


@pytest.mark.parametrize("damage", ["[" * 100_000, "not json", '{"checkpoint": "checkpoints/last"}', "[1]"])
def test_a_damaged_trained_record_is_no_record_not_a_traceback(tmp_path, damage):
    """trained.json was read with a bare json.loads: one nested too deeply ended `--resume` in a raw
    RecursionError. A damaged record counts as none (the resume trains on, or is refused, as without one)."""
    from audiotrain.recipes.chords import train
    from audiotrain.recipes.chords.config import TrainingConfig

    (tmp_path / train.TRAINED_FILE).write_text(damage)
    assert train.trained_checkpoint(tmp_path, TrainingConfig(num_epochs=2)) is None


def _test_rows(metrics_csv: Path) -> list[dict[str, str]]:
    """The rows of a CSV logger's metrics.csv that hold test scores, without their empty cells."""
    import csv

    with metrics_csv.open(newline="") as f:
        rows = [{k: v for k, v in row.items() if v} for row in csv.DictReader(f)]
    return [{k: v for k, v in row.items() if k == "step" or k.startswith("test_")} for row in rows
            if any(k.startswith("test_") for k in row)]  # fmt: skip


def test_a_resumed_evaluation_sends_its_test_scores_to_the_runs_loggers(cache, tmp_path, capsys):
    """A run killed before its held-out evaluation finished scored its test songs on --resume, but its
    loggers never got the test scores an uninterrupted run sends: they now go to the run's own logger runs
    (the same CSV / TensorBoard version folders), under the same names, at the same step."""
    flags = [*TINY_FLAGS, "--data.cache_dir", str(cache), "--logger", "csv,tensorboard"]
    unstopped = tmp_path / "unstopped"
    assert chords.main([*flags, "--run_dir", str(unstopped)]) == 0
    run_dir = tmp_path / "run"
    argv = [*flags, "--run_dir", str(run_dir)]
    _killed_at(EVALUATION, argv)
    capsys.readouterr()
    assert chords.main([*argv, "--resume", str(run_dir / "checkpoints" / "last")]) == 0
    assert "its training ended earlier; its held-out songs are scored now" in capsys.readouterr().err
    for logger in ("csv", "tensorboard"):
        assert [p.name for p in (run_dir / logger).iterdir()] == ["version_0"], logger
    expected = _test_rows(unstopped / "csv" / "version_0" / "metrics.csv")
    assert expected and _test_rows(run_dir / "csv" / "version_0" / "metrics.csv") == expected


# 2-rank jobs and signal timing: with -n, no other test runs beside these (tests/conftest.py).
pytestmark = pytest.mark.serial
