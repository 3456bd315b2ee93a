"""`python -m audiotrain runs` / `runs compare`: run folders built as the recipes write them (by hand: the
record files a chords run, a chords cv run, a CLAP run and a `create_trainer` run leave), listed and
compared."""

import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import textwrap

from audiotrain.__main__ import main
from audiotrain.train.checkpoint import CLAIM_FILE

import pytest
from child_processes import run_as_main
from fifo_waits import returns_without_waiting

from tests import deadlines
from tests.other_users import closed_to_this_user


def write_json(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=1))


def checkpoint(folder, epoch):
    """A checkpoint folder as the Trainer saves it (its trainer_state.json; its weights do not matter)."""
    write_json(
        folder / "trainer_state.json",
        {
            "format": "audiotrain-checkpoint",
            "format_version": 2,
            "progress": {"epoch": epoch, "global_step": 2 * epoch},
        },
    )
    (folder / "model.safetensors").write_bytes(b"\0" * 1000)


def chords_run(run, *, epochs=2, trained=True, majmin=None, lr=0.002, interrupted=False):
    """A chords run folder: config.json at the start, checkpoints, then trained.json, history.json and
    evaluation/scores.json as its training and held-out evaluation end."""
    config = {
        "learning_rate": lr,
        "num_epochs": epochs,
        "checkpoint_dir": "checkpoints",
        "model": {"d_model": 32, "n_layers": 1},
        "logger": {"names": ""},
        "data": {"cache_dir": None},
    }
    write_json(
        run / "config.json",
        {
            "config": config,
            "versions": {"audiotrain": "0.1.0+gabc"},
            "command": ["chords"],
            "songs": {"train": ["a"], "test": ["b"]},
        },
    )
    checkpoint(run / "checkpoints" / "last", epochs if trained else 1)
    if interrupted:
        checkpoint(run / "checkpoints" / "interrupted", 1)
    if trained:
        checkpoint(run / "checkpoints" / "best", epochs)
        write_json(
            run / "trained.json", {"checkpoint": "checkpoints/best", "global_step": 4, "num_epochs": epochs}
        )
        write_json(run / "history.json", {"epoch": list(range(epochs)), "val_loss": [3.0, 2.5][:epochs]})
    if majmin is not None:
        write_json(run / "evaluation" / "scores.json", {"pooled": {"majmin": majmin, "root": majmin + 0.1}})


def clap_run(run, r_at_1):
    """A CLAP run folder: config.json, checkpoints, and retrieval.json once scored (`r_at_1` not None)."""
    record = {
        "config": {"task": {"learning_rate": 3e-4}},
        "versions": {},
        "command": [],
        "model_source": "/m",
    }
    write_json(run / "config.json", record)
    checkpoint(run / "checkpoints" / "last", 3)
    if r_at_1 is not None:
        write_json(
            run / "retrieval.json", {"before": {}, "after": {"text_to_audio_R@1": r_at_1, "mAP@10": 0.3}}
        )


def trainer_run(run, val_losses):
    """A `create_trainer` run folder: config.yaml, checkpoints, history.json once train() ended."""
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(f"training:\n  num_epochs: {len(val_losses)}\n")
    checkpoint(run / "checkpoints" / "last", len(val_losses))
    write_json(run / "history.json", {"epoch": list(range(len(val_losses))), "val_loss": val_losses})


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """runs/ as a researcher's weeks leave it: every kind of run, an MLflow store, a damaged record."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "runs"
    chords_run(root / "good", majmin=0.6)
    chords_run(root / "better", majmin=0.7, lr=0.001)
    chords_run(root / "stopped", trained=False, interrupted=True, majmin=0.3)  # (scores its stopped weights)
    chords_run(root / "resumed", interrupted=True, majmin=0.65)  # stopped, then resumed to its end
    chords_run(root / "crashed", trained=False)
    chords_run(root / "unscored")
    cv = root / "cv5"
    write_json(
        cv / "cv_progress.json",
        {
            "folds": 2,
            "songs": ["a", "b"],
            "config": {"num_epochs": 2},
            "done": {"0": {}, "1": {}},
            "trained": {},
        },
    )
    write_json(
        cv / "cv_scores.json", {"folds": [{}, {}], "mean": {"majmin": 0.5, "root": 0.55, "mirex": 0.4}}
    )
    chords_run(cv / "fold0", majmin=0.5)
    clap_run(root / "clap1", r_at_1=0.25)
    write_json(root / "clapcv" / "folds.json", {"0": {}, "1": {}})  # fold 1 ended before its scores
    clap_run(root / "clapcv" / "fold0", r_at_1=0.2)
    clap_run(root / "clapcv" / "fold1", r_at_1=None)
    trainer_run(root / "mymodule-20261127-120000", [1.0, 0.5, 0.7, 0.6])
    write_json(root / "trainer_cv" / "folds.json", {})  # train_with_cv: the module's own metrics
    write_json(root / "trainer_cv" / "cv_scores.json", {"folds": [{}, {}], "mean": {"test_loss": 0.61}})
    trainer_run(root / "trainer_cv" / "fold0", [0.9])
    (root / "mlruns" / "0").mkdir(parents=True)
    (root / "mlflow.db").write_bytes(b"SQLite")
    (root / "damaged").mkdir()
    (root / "damaged" / "config.json").write_text('{"config": ')
    return root


def listing(capsys, *argv):
    assert main(["runs", *argv]) == 0
    return capsys.readouterr().out


def row(text, name):
    return next(line.split() for line in text.splitlines() if line.split()[:1] == [name])


def test_lists_every_run_with_its_recipe_status_epochs_and_score(runs, capsys):
    text = listing(capsys)  # default: runs/
    assert row(text, "good")[:3] == ["good", "chords", "finished"]
    assert row(text, "good")[5:8] == ["2", "majmin", "0.600"]
    assert row(text, "stopped")[2] == "interrupted"
    assert "stopped: stopped by a signal in epoch 1: --resume runs/stopped/checkpoints/interrupted" in text
    assert row(text, "resumed")[2] == "finished"
    assert row(text, "unscored")[2] == "interrupted"  # trained, killed before its held-out evaluation
    assert (
        "unscored: trained, not scored (no evaluation/scores.json): --resume runs/unscored/checkpoints/last"
        in text
    )
    assert row(text, "crashed")[2] == "failed"
    assert row(text, "cv5")[1:4] == ["chords", "cv", "finished"] and "2/2 folds" in text
    assert row(text, "clap1")[1:3] == ["clap", "finished"] and "text_to_audio_R@1 0.250" in text
    assert row(text, "clapcv")[1:4] == ["clap", "cv", "failed"] and "1/2 folds" in text
    assert "clapcv: 1 of 2 folds finished" in text
    assert row(text, "mymodule-20261127-120000")[1:3] == ["trainer", "finished"]
    assert "val_loss 0.5" in text
    assert row(text, "trainer_cv")[1:4] == ["trainer", "cv", "finished"] and "test_loss 0.61" in text
    assert row(text, "mlruns")[1:3] == ["-", "unknown"]
    assert row(text, "damaged")[2] == "unreadable"
    assert "damaged: runs/damaged/config.json: not valid JSON" in text
    assert "crashed: no trained.json" in text
    assert "mlflow.db" not in text  # a file beside the runs, not a run folder


def test_columns_line_up_for_names_in_wide_characters(runs, capsys):
    """A run named in CJK (2 columns a character) pushed its row's columns right of the others'."""
    import unicodedata

    chords_run(runs / "-train run 中文", majmin=0.4)
    text = listing(capsys)
    lines = [line for line in text.splitlines() if "chords" in line and "finished" in line]

    def column(line: str) -> int:  # where "chords" starts, in terminal columns
        before = line[: line.index("chords")]
        return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in before)

    assert len({column(line) for line in lines}) == 1, text


@contextlib.contextmanager
def lock_held(folder):
    """A live process holding `folder`'s claim lock as a fit does; yields that process."""
    holder = textwrap.dedent(f"""
        import fcntl, json, os, sys
        fd = os.open({str(folder / CLAIM_FILE)!r}, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        owner = {{"pid": os.getpid(), "host": "h", "since": "now", "holder": "run"}}
        os.write(fd, json.dumps(owner).encode())
        print("locked", flush=True)
        sys.stdin.read()
    """)
    # (`with`: closes the pipes, stdout's too, and waits; closing stdin ends the holder)
    with subprocess.Popen(
        [sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            assert deadlines.read_line(process, "'locked' from the child", 120) == "locked\n"
            yield process
        finally:
            process.stdin.close()


def test_a_run_whose_process_holds_its_lock_is_running(runs, capsys):
    with lock_held(runs / "crashed") as process:
        text = listing(capsys)
        assert row(text, "crashed")[2] == "running"
        assert f"the run of process {process.pid} on host h" in text
    assert row(listing(capsys), "crashed")[2] == "failed"  # the lock went with its process


def test_a_run_folder_a_live_run_holds_before_its_record_is_written_is_running(runs, capsys):
    """A run opening its folder claims it, then writes config.json; --overwrite removes the earlier run's
    records first. A `runs` in between (a cron job's) listed the live run as unknown ("holds no run record")
    or unreadable ("config.json: missing, though the folder holds a recipe run's records")."""
    (runs / "starting").mkdir()
    replaced = runs / "replaced"  # --overwrite under way: config.json gone, the earlier evaluation not yet
    (replaced / "evaluation").mkdir(parents=True)
    write_json(replaced / "trained.json", {})
    with lock_held(runs / "starting") as starting, lock_held(replaced) as replacing:
        text = listing(capsys)
        assert row(text, "starting")[2] == "running" and row(text, "replaced")[2] == "running", text
        assert f"starting: the run of process {starting.pid} on host h" in text
        assert f"replaced: the run of process {replacing.pid} on host h" in text
        alone = listing(capsys, "runs/starting")  # given itself: listed alone, not as a folder of runs
        assert [line.split()[0] for line in alone.splitlines()[1:2]] == ["starting"], alone
        assert row(alone, "starting")[2] == "running"
    assert row(listing(capsys), "starting")[2] == "unknown"  # the lock went with its process
    assert row(listing(capsys), "replaced")[2] == "unreadable"


def test_a_trainer_run_whose_fit_holds_its_checkpoint_folder_is_running(runs, capsys):
    """The Trainer's fit claims the checkpoint folder, not the run folder: train() has not ended yet."""
    run = runs / "training-now"
    trainer_run(run, [0.9])
    (run / "history.json").unlink()
    with lock_held(run / "checkpoints") as process:
        text = listing(capsys)
        assert row(text, "training-now")[2] == "running"
        assert f"training-now: the run of process {process.pid} on host h" in text


def test_sort_puts_the_best_score_first_and_losses_lowest_first(runs, capsys):
    names = [line.split()[0] for line in listing(capsys, "--sort", "majmin").splitlines()[1:4]]
    assert names == ["better", "resumed", "good"]  # (runs without a majmin follow)
    names = [line.split()[0] for line in listing(capsys, "--sort", "val_loss").splitlines()[1:3]]
    assert names == ["mymodule-20261127-120000", "better"]


def test_sort_by_score_puts_scores_best_first_then_losses_lowest_first(runs, capsys):
    """--sort score sorted every run's headline highest first, so of two runs headlined by val_loss the
    worse one came first."""
    trainer_run(runs / "worse", [0.9])
    trainer_run(runs / "lower", [0.2])
    listed = json.loads(listing(capsys, "--sort", "score", "--json"))
    headlines = [(run["name"], run["score_name"], run["score"]) for run in listed if run["score"] is not None]
    losses = [headline for headline in headlines if "loss" in headline[1]]
    assert headlines[-len(losses) :] == losses, headlines  # the scores first, then the losses
    assert [score for _, _, score in losses] == sorted(score for _, _, score in losses), losses
    assert [score for _, _, score in headlines[: -len(losses)]] == sorted(
        (score for _, _, score in headlines[: -len(losses)]), reverse=True
    )


def scored_by_the_recipe(run, checkpoint_name, majmin):
    """evaluation/scores.json as the recipe's held-out evaluation writes it: its ``scored`` record names the
    checkpoint it scored and the epoch and step that checkpoint was saved at (`scored_record`)."""
    folder = run / "checkpoints" / checkpoint_name
    progress = json.loads((folder / "trainer_state.json").read_text())["progress"]
    scored = {
        "checkpoint": str(folder.resolve()),
        "epoch": progress["epoch"],
        "step": progress["global_step"],
    }
    write_json(
        run / "evaluation" / "scores.json", {"pooled": {"majmin": majmin, "root": 0.9}, "scored": scored}
    )


def stopped_and_scored(run):
    """A chords run of 4 epochs stopped by Ctrl-C in epoch 1 (``interrupted``, ``best`` of epoch 1): as the
    recipe does, it scored its stopped run's ``best`` on the held-out songs."""
    chords_run(run, epochs=4, trained=False, interrupted=True)
    checkpoint(run / "checkpoints" / "best", 1)
    scored_by_the_recipe(run, "best", majmin=0.3)


def test_a_run_stopped_as_its_evaluation_wrote_its_files_is_interrupted_not_finished(runs, capsys):
    """Ctrl-C in the held-out evaluation just after it wrote scores.json (which comes first, listing the
    .lab files to come) left evaluation/ with scores.json alone; the run said 'evaluation (cut short)
    missing', and `runs` listed it as finished. It is interrupted until its .lab files and scores.md are
    there, and keeps its scores."""
    run = runs / "cut"
    chords_run(run)
    scored_by_the_recipe(run, "best", majmin=0.4)
    scores = json.loads((run / "evaluation" / "scores.json").read_text())
    write_json(run / "evaluation" / "scores.json", {**scores, "per_song": {"b": {}}, "not_written": []})
    text = listing(capsys)
    assert row(text, "cut")[2] == "interrupted" and row(text, "cut")[6:8] == ["majmin", "0.400"]
    assert "cut: trained, its held-out evaluation cut short" in text and "b.lab" in text
    (run / "evaluation" / "b.lab").write_text("0.0 1.0 N\n")
    (run / "evaluation" / "scores.md").write_text("scores\n")
    assert row(listing(capsys), "cut")[2] == "finished"


def test_a_clap_run_stopped_after_training_is_interrupted_with_the_resume_that_scores_it(runs, capsys):
    """Ctrl-C in a CLAP run's final evaluation (history.json written as its training ended, no
    retrieval.json) was listed 'failed: the run ended before its scores (an error or a kill stopped it)',
    with no way on; --resume RUN/checkpoints/last with the same flags scores and exports it."""
    run = runs / "clapstop"
    clap_run(run, r_at_1=None)
    write_json(run / "history.json", {"epoch": [0, 1, 2], "val_loss": [2.0, 1.9, 1.8]})
    text = listing(capsys)
    assert row(text, "clapstop")[1:3] == ["clap", "interrupted"]
    assert (
        "clapstop: trained, not scored (no retrieval.json): --resume runs/clapstop/checkpoints/last" in text
    )


def test_a_stopped_run_resumed_and_killed_in_training_is_failed_without_the_stops_score(runs, capsys):
    stopped_and_scored(runs / "int5")
    text = listing(capsys)  # (the stop's own evaluation, of the weights it stopped with)
    assert row(text, "int5")[2] == "interrupted" and row(text, "int5")[6:8] == ["majmin", "0.300"]
    checkpoint(runs / "int5" / "checkpoints" / "last", 3)  # --resume ... then SIGKILL in epoch 3
    text = listing(capsys)
    assert row(text, "int5")[2] == "failed"
    assert row(text, "int5")[6] == "-"
    assert "int5: no trained.json" in text
    stale = "evaluation/scores.json scored checkpoints/best saved after 1 epoch, before this run trained on"
    assert stale in text
    checkpoint(runs / "int5" / "checkpoints" / "best", 3)  # (a better validation moved best too: the same)
    assert row(listing(capsys), "int5")[2] == "failed"
    assert main(["runs", "compare", "--json", "runs/int5", "runs/good"]) == 0
    assert json.loads(capsys.readouterr().out)["scores"]["majmin"] == [None, 0.6]


def test_a_resumed_run_stopped_in_its_evaluation_is_interrupted_until_its_own_scores(runs, capsys):
    run = runs / "int"
    stopped_and_scored(run)
    checkpoint(run / "checkpoints" / "last", 4)  # --resume trained to the end, with a new best ...
    checkpoint(run / "checkpoints" / "best", 3)
    write_json(run / "trained.json", {"checkpoint": "checkpoints/best", "global_step": 8, "num_epochs": 4})
    text = listing(capsys)  # ... and Ctrl-C landed in its held-out evaluation: the stop's scores are left
    assert row(text, "int")[2] == "interrupted"
    assert row(text, "int")[6] == "-"
    stale = "int: trained, not scored (evaluation/scores.json scored checkpoints/best saved after 1 epoch,"
    assert stale in text
    scored_by_the_recipe(run, "best", majmin=0.62)  # its --resume scored it
    text = listing(capsys)
    assert row(text, "int")[2] == "finished" and row(text, "int")[6:8] == ["majmin", "0.620"]


def test_a_resumed_run_whose_stop_scored_other_weights_than_its_end_is_not_finished(runs, capsys):
    run = runs / "early"  # stopped before its first validation: it scored the interrupted weights
    chords_run(run, epochs=4, trained=False, interrupted=True)
    scored_by_the_recipe(run, "interrupted", majmin=0.1)
    checkpoint(run / "checkpoints" / "last", 4)  # resumed to its end, stopped in its evaluation
    checkpoint(run / "checkpoints" / "best", 4)
    write_json(run / "trained.json", {"checkpoint": "checkpoints/best", "global_step": 8, "num_epochs": 4})
    assert row(listing(capsys), "early")[2] == "interrupted"


def test_an_unknown_sort_key_is_one_line_naming_the_choices(runs, capsys):
    with pytest.raises(SystemExit) as exit:
        main(["runs", "--sort", "accuracy"])
    assert exit.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--sort accuracy: no such field or score in these runs" in error and "majmin" in error


def test_json_has_the_documented_keys(runs, capsys):
    records = json.loads(listing(capsys, "--json", "--sort", "name"))
    assert [set(record) for record in records] == [
        {
            "name",
            "path",
            "recipe",
            "status",
            "reason",
            "when",
            "epochs",
            "folds",
            "score_name",
            "score",
            "scores",
            "build",
            "size_bytes",
        }
    ] * len(records)
    good = next(record for record in records if record["name"] == "good")
    assert good["scores"] == {"majmin": 0.6, "root": 0.7, "val_loss": 2.5}
    assert good["score"] == 0.6 and good["build"] == "0.1.0+gabc" and good["size_bytes"] > 2000
    assert good["when"][:4].isdigit() and good["status"] == "finished"
    cv5 = next(record for record in records if record["name"] == "cv5")
    assert cv5["scores"] == {"majmin": 0.5, "root": 0.55}  # (its headline scores: not mirex)
    assert cv5["folds"] == "2/2" and cv5["score_name"] == "majmin"
    assert cv5["build"] == "0.1.0+gabc"  # (its folds' build)


def test_compare_prints_the_settings_that_differ_and_the_scores(runs, capsys):
    assert main(["runs", "compare", "runs/good", "runs/better"]) == 0
    text = capsys.readouterr().out
    assert row(text, "learning_rate") == ["learning_rate", "0.002", "0.001"]
    assert row(text, "score")[1:] == ["majmin", "0.6", "0.7"]
    assert "model.d_model" not in text  # the same in both
    assert main(["runs", "compare", "--json", "runs/good", "runs/cv5"]) == 0
    compared = json.loads(capsys.readouterr().out)
    assert compared["settings"]["model.d_model"] == [32, None]
    assert "data.cache_dir" not in compared["settings"]  # null in one, absent from the other: the same
    assert compared["scores"]["majmin"] == [0.6, 0.5]


def test_compare_of_three_runs_shows_each_difference_and_status(runs, capsys):
    """A setting only the third run changes, or one the first run lacks, is a difference too; each run keeps
    its own status; runs of one config say so."""
    assert main(["runs", "compare", "--json", "runs/good", "runs/unscored", "runs/better"]) == 0
    compared = json.loads(capsys.readouterr().out)
    assert compared["settings"] == {"learning_rate": [0.002, 0.002, 0.001]}
    assert compared["status"] == ["finished", "interrupted", "finished"]
    assert main(["runs", "compare", "--json", "runs/cv5", "runs/good"]) == 0
    assert json.loads(capsys.readouterr().out)["settings"]["model.d_model"] == [None, 32]
    assert main(["runs", "compare", "runs/good", "runs/resumed"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "settings: the same in every run"


def test_compare_of_trainer_runs_leaves_out_the_builds_their_config_yaml_records(runs, capsys):
    """config.yaml's ``versions`` say what wrote it (the build row shows it), not a setting that differs."""
    for name, build in (("v1", "0.1.0"), ("v2", "0.2.0")):
        trainer_run(runs / name, [0.5])
        (runs / name / "config.yaml").write_text(
            f"training:\n  num_epochs: 1\nversions:\n  audiotrain: {build}\n"
        )
    assert main(["runs", "compare", "--json", "runs/v1", "runs/v2"]) == 0
    assert json.loads(capsys.readouterr().out)["settings"] == {}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["runs", "elsewhere"], "elsewhere does not exist"),
        (["runs", "runs/mlflow.db"], "runs/mlflow.db is a file, not a folder"),
        (["runs", "compare", "runs/good", "runs/elsewhere"], "runs/elsewhere does not exist"),
        (["runs", "compare", "runs/good", "runs/mlruns"], "runs/mlruns: not a run to compare: holds no run"),
        (["runs", "compare", "runs/good"], "give two runs or more"),
    ],
)
def test_wrong_folders_are_one_line_errors(runs, capsys, argv, message):
    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert exit.value.code == 2
    assert message in capsys.readouterr().err


def test_listing_writes_nothing(runs, capsys):
    def snapshot():
        return {path: (path.stat().st_mtime_ns, path.stat().st_size) for path in runs.rglob("*")}

    before = snapshot()
    listing(capsys)
    listing(capsys, "--json")
    main(["runs", "compare", "runs/good", "runs/better"])
    assert snapshot() == before
    assert not any(name.endswith(".lock") for _, _, files in os.walk(runs) for name in files)


def test_the_console_script_names_itself_in_runs_help(runs, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/venv/bin/audiotrain", "runs", "--help"])
    with pytest.raises(SystemExit) as exit:
        main()
    assert exit.value.code == 0
    assert capsys.readouterr().out.startswith(
        "usage: audiotrain runs [-h] [--sort KEY] [--status STATUS] [--json]"
    )


def test_a_run_killed_as_its_training_ended_and_scored_by_its_resume_is_finished(runs, capsys):
    run = runs / "killed_at_end"  # SIGKILL before trained.json; --resume checkpoints/last scored best
    chords_run(run, epochs=4, trained=False)
    checkpoint(run / "checkpoints" / "last", 4)
    checkpoint(run / "checkpoints" / "best", 3)
    scored_by_the_recipe(run, "best", majmin=0.5)
    text = listing(capsys)
    assert row(text, "killed_at_end")[2] == "finished" and row(text, "killed_at_end")[6:8] == [
        "majmin",
        "0.500",
    ]


@pytest.mark.parametrize(
    "damaged",
    ["history.json", "trained.json", "config.json", "checkpoints/last/trainer_state.json"],
)
def test_a_run_with_a_deeply_nested_file_does_not_stop_the_listing(runs, capsys, damaged):
    """A downloaded run whose JSON file was 100,000 arrays deep gave a raw RecursionError: no run listed."""
    (runs / "good" / damaged).write_text("[" * 100_000 + "]" * 100_000)
    text = listing(capsys)
    assert row(text, "better")[1:3] == ["chords", "finished"]  # the others are listed
    if damaged in ("history.json", "config.json", "trained.json"):
        assert row(text, "good")[2] == "unreadable"
        assert f"good: runs/good/{damaged}: not valid JSON (nested too deeply)" in text
    else:  # (a detail the listing does without: the epochs it reached)
        assert row(text, "good")[1] == "chords"


def test_a_config_yaml_of_billion_laughs_aliases_is_unreadable_at_once(runs, capsys):
    """377 bytes of aliases nested ten deep: `runs --json` ran past 120 s at 2 GB, and `runs compare` ended
    in a MemoryError, walking the billions of values they stand for."""
    laughs = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    laughs += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    for name in ("laughs1", "laughs2"):
        trainer_run(runs / name, [0.5])
        (runs / name / "config.yaml").write_text("\n".join(laughs) + "\n")
    assert main(["runs", "--json", "runs"]) == 0
    listed = {run["name"]: run for run in json.loads(capsys.readouterr().out)}
    assert listed["laughs1"]["status"] == "unreadable"
    assert (
        "laughs1/config.yaml: holds more than 100000 values (its YAML aliases" in listed["laughs1"]["reason"]
    )
    assert listed["better"]["status"] == "finished"
    with pytest.raises(SystemExit):
        main(["runs", "compare", "runs/laughs1", "runs/laughs2"])
    assert "runs/laughs1: not a run to compare: runs/laughs1/config.yaml: holds more than" in (
        capsys.readouterr().err
    )


def test_a_chords_cv_of_an_older_audiotrain_is_listed_as_a_finished_cv(runs, capsys):
    """A chords cv run of an audiotrain from before cv_progress.json (2026-11-26: cv_scores.json, fold<k>/
    and oof/ alone) was listed as `unknown`, "holds no run record", without its scores; `runs` of that
    folder listed its folds as separate runs, and `runs compare` refused it."""
    cv = runs / "old_cv"
    write_json(cv / "cv_scores.json", {"folds": [{}, {}], "mean": {"majmin": 0.45, "root": 0.5}})
    chords_run(cv / "fold0", majmin=0.4)
    chords_run(cv / "fold1", majmin=0.5)
    (cv / "oof").mkdir()
    text = listing(capsys)
    assert row(text, "old_cv")[1:4] == ["chords", "cv", "finished"] and "2/2 folds" in text, text
    assert "majmin 0.450" in text and "old_cv: holds no run record" not in text, text
    assert row(listing(capsys, "runs/old_cv"), "old_cv")[1:4] == ["chords", "cv", "finished"]
    assert main(["runs", "compare", "runs/old_cv", "runs/cv5"]) == 0
    assert "cv.folds" not in capsys.readouterr().out  # (two folds each)


def test_a_cv_counts_its_fold_folders_and_the_folds_its_folds_json_planned(runs, capsys):
    """An interrupted `train_with_cv` of 4 folds (fold2 and fold3 never began) beside the user's
    `folder_notes/` was listed as 1/3 folds: any `fold*` folder counted as a fold, and the total was the
    folders'."""
    cv = runs / "stopped_cv"
    write_json(cv / "folds.json", {"seed": 0, "folds": [{}, {}, {}, {}]})
    trainer_run(cv / "fold0", [0.9])
    (cv / "fold1").mkdir()
    (cv / "fold1" / "config.yaml").write_text("training:\n  num_epochs: 1\n")  # killed in its training
    (cv / "folder_notes").mkdir()
    (cv / "folder_notes" / "todo.txt").write_text("try a lower lr")
    text = listing(capsys)
    assert row(text, "stopped_cv")[1:4] == ["trainer", "cv", "failed"] and "1/4 folds" in text
    # (no "--resume" advice: the chords recipe's cv alone has one)
    assert "  stopped_cv: 1 of 4 folds finished, no cv_scores.json" in text.splitlines()
    (cv / "folds.json").write_text("{}")  # (a record without the list: the fold folders are the total)
    listed = {run["name"]: run for run in json.loads(listing(capsys, "--json"))}
    assert listed["stopped_cv"]["folds"] == "1/2"


def test_sort_epochs_is_largest_first_and_when_is_each_runs_newest_record(runs, capsys):
    """The README: `--sort when` lists runs by the time of their newest record file, newest first, and
    `epochs` sorts largest first."""
    trainer_run(runs / "short", [1.0])
    trainer_run(runs / "long", [1.0, 0.9, 0.8])
    day = 86400
    for path in [runs / "long", *(runs / "long").rglob("*")]:
        os.utime(path, (os.path.getmtime(path) - day, os.path.getmtime(path) - day))
    for path in (runs / "short" / "config.yaml", runs / "short" / "checkpoints" / "last"):
        os.utime(path, (os.path.getmtime(path) - 3 * day,) * 2)  # its history.json, newer, is its time
    records = json.loads(listing(capsys, "--json", "--sort", "epochs", "runs/short", "runs/long"))
    assert [record["name"] for record in records] == ["long", "short"]
    records = json.loads(listing(capsys, "--json", "--sort", "when", "runs/short", "runs/long"))
    assert [record["name"] for record in records] == ["short", "long"]


def test_size_counts_a_checkpoint_hard_linked_as_best_and_last_once(runs, capsys):
    run = runs / "linked"
    trainer_run(run, [1.0])
    (before,) = json.loads(listing(capsys, "--json", "runs/linked"))
    (run / "checkpoints" / "best").mkdir()
    for file in (run / "checkpoints" / "last").iterdir():
        os.link(file, run / "checkpoints" / "best" / file.name)  # as the Trainer saves best = last
    (after,) = json.loads(listing(capsys, "--json", "runs/linked"))
    assert after["size_bytes"] == before["size_bytes"]


def test_a_nan_in_an_older_history_is_no_best_val_loss(runs, capsys):
    """An older build wrote a diverged epoch's loss as a bare NaN (today's history.json writes null)."""
    trainer_run(runs / "diverged", [1.0])
    (runs / "diverged" / "history.json").write_text('{"epoch": [0, 1, 2], "val_loss": [NaN, 0.5, Infinity]}')
    (record,) = json.loads(listing(capsys, "--json", "runs/diverged"))
    assert record["score_name"] == "val_loss" and record["score"] == 0.5


def cv_in_its_second_fold(cv):
    """A `train_with_cv` of 2 folds: fold 0 trained, fold 1 begun (its config.yaml); returns `cv`."""
    write_json(cv / "folds.json", {"seed": 0, "folds": [{}, {}]})
    trainer_run(cv / "fold0", [0.9])
    (cv / "fold1").mkdir()
    (cv / "fold1" / "config.yaml").write_text("training:\n  num_epochs: 2\n")
    return cv


def test_a_cv_whose_fold_a_signal_stopped_is_interrupted_and_that_fold_not_done(runs, capsys):
    cv = cv_in_its_second_fold(runs / "ctrl_c_cv")
    checkpoint(cv / "fold1" / "checkpoints" / "interrupted", 1)  # Ctrl-C in fold 1
    text = listing(capsys)
    assert row(text, "ctrl_c_cv")[1:4] == ["trainer", "cv", "interrupted"]
    assert row(text, "ctrl_c_cv")[6:8] == ["1/2", "folds"]  # (the stopped fold is not done)


def test_a_chords_run_without_held_out_songs_is_finished_once_trained(runs, capsys):
    run = runs / "all_songs"
    chords_run(run)
    record = json.loads((run / "config.json").read_text())
    record["songs"]["test"] = []  # nothing held out: nothing to score
    write_json(run / "config.json", record)
    text = listing(capsys)
    assert row(text, "all_songs")[2] == "finished" and "all_songs:" not in text


def test_a_bare_trainer_root_is_of_unknown_status_not_failed(runs, capsys):
    """A plain Trainer writes no record of its end (history.json is create_trainer's): not known to fail."""
    checkpoint(runs / "bare" / "checkpoints" / "last", 2)
    text = listing(capsys)
    assert row(text, "bare")[1:3] == ["trainer", "unknown"] and row(text, "bare")[5] == "2"
    assert "bare: Trainer checkpoints without create_trainer's config.yaml" in text


def test_a_chords_run_is_read_in_the_checkpoint_dir_it_recorded(runs, capsys):
    run = runs / "own_dir"
    chords_run(run, epochs=4, trained=False)
    record = json.loads((run / "config.json").read_text())
    record["config"]["checkpoint_dir"] = "ckpts"
    write_json(run / "config.json", record)
    shutil.move(run / "checkpoints", run / "ckpts")
    checkpoint(run / "ckpts" / "interrupted", 3)  # stopped in epoch 3, its `last` of epoch 1
    text = listing(capsys)
    assert row(text, "own_dir")[2] == "interrupted" and row(text, "own_dir")[5] == "3"
    assert "own_dir: stopped by a signal in epoch 3: --resume runs/own_dir/ckpts/interrupted" in text


def test_an_interrupted_run_of_another_build_names_its_config_json_to_resume_with(runs, capsys):
    """A run an older audiotrain stopped was listed with "--resume RUN/checkpoints/interrupted with the same
    flags goes on"; after the upgrade the same flags (a preset whose defaults changed) were refused. Its
    config.json holds the settings it ran with: the note names it where another build made the run."""
    from audiotrain._build import build_version

    for name, build in (("older", "0.1.0"), ("this_build", build_version())):
        chords_run(runs / name, trained=False, interrupted=True)
        record = json.loads((runs / name / "config.json").read_text())
        record["versions"]["audiotrain"] = build
        write_json(runs / name / "config.json", record)
    text = listing(capsys)
    resume = "--config runs/older/config.json --resume runs/older/checkpoints/interrupted"
    assert f"(a run of audiotrain 0.1.0: {resume} resumes it with its own settings)" in text, text
    assert "--config runs/this_build" not in text, text


def test_an_unreadable_folder_given_itself_is_listed_as_unreadable(runs, capsys):
    text = listing(capsys, "runs/damaged")
    assert row(text, "damaged")[1:3] == ["-", "unreadable"] and "config.json" in text


@pytest.mark.parametrize("held", ["fold1", "fold1/checkpoints"])  # (its run folder; its fit's checkpoints)
def test_a_cv_whose_fold_is_training_names_that_folds_process(runs, capsys, held):
    cv = cv_in_its_second_fold(runs / "cv_now")
    (cv / held).mkdir(exist_ok=True)
    with lock_held(cv / held) as process:
        text = listing(capsys)
        assert row(text, "cv_now")[3] == "running"
        assert f"  cv_now: the run of process {process.pid} on host h (since now)" in text.splitlines()


def test_a_chords_run_whose_checkpoints_were_deleted_counts_the_epochs_of_its_history(runs, capsys):
    shutil.rmtree(runs / "good" / "checkpoints")  # (to free the disk: its scores stay)
    text = listing(capsys)
    assert row(text, "good")[2] == "finished" and row(text, "good")[5] == "2"


def test_a_run_scored_by_todays_build_stays_finished_once_its_checkpoints_are_deleted(runs, capsys):
    """A scored checkpoint that is no longer there says nothing against the scores its record names."""
    run = runs / "freed"
    chords_run(run)
    scored_by_the_recipe(run, "best", majmin=0.55)
    shutil.rmtree(run / "checkpoints")  # (to free the disk)
    text = listing(capsys)
    assert row(text, "freed")[2] == "finished" and row(text, "freed")[6:8] == ["majmin", "0.550"]


def test_a_run_stopped_twice_in_one_epoch_shows_no_scores_of_its_first_stop(runs, capsys):
    """Ctrl-C, scored, --resume, Ctrl-C again in the same epoch before its own scores: the first stop's scores
    are of other weights (another step), though of the same epoch."""
    run = runs / "twice"
    chords_run(run, epochs=4, trained=False, interrupted=True)  # stopped in epoch 1 at step 2, and scored
    scored_by_the_recipe(run, "interrupted", majmin=0.2)
    state = json.loads((run / "checkpoints" / "interrupted" / "trainer_state.json").read_text())
    state["progress"]["global_step"] = 3  # stopped again, one step on
    write_json(run / "checkpoints" / "interrupted" / "trainer_state.json", state)
    text = listing(capsys)
    assert row(text, "twice")[2] == "interrupted" and row(text, "twice")[6] == "-"


@pytest.mark.parametrize(
    "damaged, change, reason",
    [  # (a hand edit or a merge: a record of the right syntax with a field of another type)
        ("evaluation/scores.json", lambda d: d.update(pooled="x"), None),
        ("evaluation/scores.json", lambda d: [1], "evaluation/scores.json: holds a list, not a JSON object"),
        ("trained.json", lambda d: [1], "trained.json: holds a list, not a JSON object"),
        ("config.json", lambda d: d["config"].update(data="x"), None),
        ("config.json", lambda d: d.update(songs="x"), None),
    ],
)
def test_a_run_whose_record_holds_a_field_of_another_type_does_not_stop_the_listing(
    runs, capsys, damaged, change, reason
):
    """scores.json's pooled "x", config.json's data "x" or songs "x", a record that is a list: a raw
    AttributeError ('str' object has no attribute 'get'), exit status 1, no run listed."""
    path = runs / "good" / damaged
    record = json.loads(path.read_text())
    path.write_text(json.dumps(change(record) or record))
    text = listing(capsys)
    assert row(text, "better")[1:3] == ["chords", "finished"]  # the others are listed
    if reason:
        assert row(text, "good")[2] == "unreadable" and f"good: runs/good/{reason}" in text
    else:  # (a detail the listing does without: its score, which songs it held out)
        assert row(text, "good")[1] == "chords"


@pytest.mark.parametrize(
    "record, text, reason",
    [  # (a Hugging Face model folder beside the runs; a YAML list)
        ("config.json", '{"model_type": "bert"}', 'config.json: holds no "config" object (not a run record)'),
        ("config.yaml", "- a\n- b\n", "config.yaml: holds a list, not settings"),
    ],
)
def test_a_folder_whose_record_holds_no_settings_is_listed_unreadable(runs, capsys, record, text, reason):
    (runs / "foreign").mkdir()
    (runs / "foreign" / record).write_text(text)
    listed = listing(capsys)
    assert row(listed, "foreign")[2] == "unreadable" and f"foreign: runs/foreign/{reason}" in listed
    assert row(listed, "good")[2] == "finished"  # (the others are listed)


def test_sort_size_is_largest_first(runs, capsys):
    records = json.loads(listing(capsys, "--json", "--sort", "size", "runs/crashed", "runs/good"))
    assert [record["name"] for record in records] == ["good", "crashed"]  # (good has its best checkpoint too)


def test_a_folder_without_runs_says_so(runs, capsys):
    (runs.parent / "empty").mkdir()
    assert listing(capsys, "empty") == "no run folders in empty\n"


def test_when_is_the_time_a_run_was_scored_and_a_trainers_build_its_last_checkpoints(runs, capsys):
    """`when` of a chords or CLAP run scored a day after its training is its scores' time; a create_trainer
    run's build is the one its ``last`` checkpoint records."""
    import datetime

    scores = {
        "good": runs / "good" / "evaluation" / "scores.json",
        "clap1": runs / "clap1" / "retrieval.json",
    }
    for name, scored in scores.items():
        for path in [runs / name, *(runs / name).rglob("*")]:
            if path != scored:
                os.utime(path, (os.path.getmtime(path) - 86400,) * 2)
    state_file = runs / "mymodule-20261127-120000" / "checkpoints" / "last" / "trainer_state.json"
    write_json(state_file, {**json.loads(state_file.read_text()), "versions": {"audiotrain": "0.3.0"}})
    listed = {run["name"]: run for run in json.loads(listing(capsys, "--json"))}
    for name, scored in scores.items():
        when = datetime.datetime.fromtimestamp(scored.stat().st_mtime).astimezone()
        assert listed[name]["when"] == when.isoformat(timespec="seconds")
    assert listed["mymodule-20261127-120000"]["build"] == "0.3.0"


def test_a_cv_whose_mean_score_is_nan_is_headlined_by_a_number(runs, capsys):
    """A cv_scores.json mean of NaN (a fold without a scored frame) is no headline score."""
    write_json(
        runs / "cv5" / "cv_scores.json", {"folds": [{}, {}], "mean": {"majmin": math.nan, "root": 0.5}}
    )
    (cv5,) = json.loads(listing(capsys, "--json", "runs/cv5"))
    assert (cv5["score_name"], cv5["score"], cv5["scores"]) == ("root", 0.5, {"root": 0.5})


def test_compare_compares_the_readable_runs_and_names_the_unreadable_one(runs, capsys):
    """One damaged run among those given does not stop the comparison: it is named with why, as `runs`
    lists the others beside it."""
    assert main(["runs", "compare", "runs/good", "runs/damaged", "runs/better"]) == 0
    text = capsys.readouterr().out
    assert row(text, "learning_rate") == ["learning_rate", "0.002", "0.001"]
    assert "not compared:\n  runs/damaged: runs/damaged/config.json" in text
    assert main(["runs", "compare", "--json", "runs/good", "runs/damaged", "runs/better"]) == 0
    compared = json.loads(capsys.readouterr().out)
    assert compared["runs"] == ["runs/good", "runs/better"] and list(compared["not_compared"]) == [
        "runs/damaged"
    ]


def test_compare_of_two_runs_one_unreadable_says_how_many_can_be_compared(runs, capsys):
    """A teacher comparing two students' runs, one of which cannot be read, was told "give two runs or
    more to compare", as if the command line named one."""
    with pytest.raises(SystemExit) as exit:
        main(["runs", "compare", "runs/good", "runs/damaged"])
    assert exit.value.code == 2
    error = capsys.readouterr().err
    assert "runs/damaged: not a run to compare: runs/damaged/config.json" in error
    assert error.rstrip().endswith("1 of the 2 runs given can be compared: two are needed"), error
    assert "give two runs or more" not in error


def test_compare_shows_the_checkpoint_a_fine_tuned_run_started_from(runs, capsys):
    """`init_from` lies beside `config` in config.json: a run from random weights and one fine-tuned from
    another run's checkpoint differed in no row."""
    record = json.loads((runs / "better" / "config.json").read_text())
    record["init_from"] = {"checkpoint": "runs/good/checkpoints/best", "epoch": 2, "global_step": 4}
    write_json(runs / "better" / "config.json", record)
    assert main(["runs", "compare", "runs/good", "runs/better"]) == 0
    assert row(capsys.readouterr().out, "init_from") == ["init_from", "-", "runs/good/checkpoints/best"]
    assert main(["runs", "compare", "runs/good", "runs/resumed"]) == 0
    assert "init_from" not in capsys.readouterr().out  # (neither has one)


def test_compare_shows_where_runs_of_the_same_settings_trained_in_another_process_count_or_blas(runs, capsys):
    """Two runs of one config.json (`processes` 0: one per core) on a 2-core and a 4-core machine train in
    2 and 4 processes, to other weights, yet `runs compare` said "settings: the same in every run" and showed
    nothing of what config.json records beside the settings (processes_used, versions.blas_threads)."""
    for name, processes in (("good", 2), ("better", 4)):
        record = json.loads((runs / name / "config.json").read_text())
        record["config"] = {"processes": 0}
        record["processes_used"] = processes
        record["versions"] |= {"mlx": "0.32.4", "blas_threads": "1"}
        write_json(runs / name / "config.json", record)
    assert main(["runs", "compare", "runs/good", "runs/better"]) == 0
    out = capsys.readouterr().out
    assert "ran on processes_used" in out, out
    assert row(out, "ran") == ["ran", "on", "processes_used", "2", "4"]
    assert "blas_threads" not in out and "versions.mlx" not in out  # (the same in both)
    assert main(["runs", "compare", "--json", "runs/good", "runs/better"]) == 0
    assert json.loads(capsys.readouterr().out)["ran_on"] == {"processes_used": [2, 4]}


def test_compare_says_where_runs_scores_come_from_other_held_out_songs(runs, capsys):
    """A fine-tune on your own songs compared with the demo run it started from showed their held-out
    scores side by side (majmin 0.228 and 0.2043) as if fine-tuning had lowered it: each was scored on its
    own held-out songs, the demo's synthetic ones and one of yours. The table says so and names the command
    that scores both on the same songs; runs held out from the same songs get no such line."""
    record = json.loads((runs / "better" / "config.json").read_text())
    record["config"]["data"]["data_dir"] = "/home/me/songs"
    record["songs"] = {"train": ["my_1"], "test": ["my_6"]}
    write_json(runs / "better" / "config.json", record)
    assert main(["runs", "compare", "runs/good", "runs/better"]) == 0
    text = capsys.readouterr().out
    assert row(text, "score")[1:] == ["majmin", "0.6", "0.7"]
    assert "scores: each run's own held-out songs, not the same songs in these runs" in text, text
    assert "chords evaluate --checkpoint RUN --data SONGS --against OTHER_RUN" in text
    assert main(["runs", "compare", "runs/good", "runs/resumed"]) == 0
    assert "not the same songs" not in capsys.readouterr().out


def test_compare_says_where_clap_runs_scores_come_from_other_evaluation_clips(tmp_path, capsys, monkeypatch):
    """Two CLAP runs of the same settings on the same folder, one held out 2 clips at random and one (after
    30f588bc read its train/, test/ folders as splits) scored on test/: compare put their R@1 side by side
    with no word that each was scored on other clips, where the chord runs' table says so."""
    monkeypatch.chdir(tmp_path)
    for name, scored in (
        ("before", ["train/c3.wav", "test/c0.wav"]),
        ("after", ["test/c0.wav", "test/c1.wav"]),
    ):
        clap_run(tmp_path / "runs" / name, 0.5)
        record = json.loads((tmp_path / "runs" / name / "config.json").read_text())
        record["clips"] = {"train": ["train/c1.wav"], "eval": scored}
        write_json(tmp_path / "runs" / name / "config.json", record)
    assert main(["runs", "compare", "runs/before", "runs/after"]) == 0
    text = capsys.readouterr().out
    assert "scores: each run's own evaluation clips, not the same clips in these runs" in text, text
    assert "clap evaluate --model RUN/hf_model --data FOLDER" in text
    assert main(["runs", "compare", "runs/after", "runs/after"]) == 0
    assert "not the same clips" not in capsys.readouterr().out


def test_a_chords_run_whose_config_json_was_deleted_is_not_listed_as_a_trainer_run(runs, capsys):
    (runs / "good" / "config.json").unlink()
    text = listing(capsys)
    assert row(text, "good")[1:3] == ["-", "unreadable"]
    assert "good: runs/good/config.json: missing, though the folder holds a recipe run's records" in text


@pytest.mark.parametrize(
    "checkpoint_name, deleted", [("best", "model.safetensors"), ("last", "trainer_state.json")]
)
def test_a_run_whose_checkpoint_files_were_deleted_says_so(runs, capsys, checkpoint_name, deleted):
    """A finished run stays finished (its training ended), with a note: predict or export of it fails."""
    (runs / "good" / "checkpoints" / checkpoint_name / deleted).unlink()
    text = listing(capsys)
    assert row(text, "good")[2] == "finished"
    assert f"good: checkpoints/{checkpoint_name} lacks {deleted} (deleted, or a copy cut short)" in text
    assert "better:" not in text  # (whole checkpoints: no note)


def test_runs_of_one_name_in_two_folders_are_shown_by_their_paths(runs, capsys):
    """`exp1/m1` and `exp2/m1` (or two cv runs' `fold0`) were both headed `m1`: nothing said whose scores
    were whose. Where two runs shown share a name, each is shown by its path; a name of its own stays."""
    chords_run(runs.parent / "exp1" / "m1", majmin=0.6)
    chords_run(runs.parent / "exp2" / "m1", majmin=0.7, lr=0.001)
    chords_run(runs.parent / "exp2" / "m2", majmin=0.5)
    text = listing(capsys, "exp1", "exp2")
    assert row(text, "exp1/m1")[1:3] == ["chords", "finished"] and row(text, "exp1/m1")[7] == "0.600"
    assert row(text, "exp2/m1")[7] == "0.700" and row(text, "m2")[7] == "0.500"
    assert main(["runs", "compare", "exp1/m1", "exp2/m1", "runs/good"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split() == ["exp1/m1", "exp2/m1", "good"]
    assert row(text, "learning_rate") == ["learning_rate", "0.002", "0.001", "0.002"]


def test_compare_of_runs_that_record_no_settings_does_not_call_them_the_same(runs, capsys):
    """Two bare Trainer roots (checkpoints alone, fit with max_epochs 5 and 7) were said to have "settings:
    the same in every run", though none was read: the line names the runs whose settings are not recorded."""
    checkpoint(runs / "bare5" / "checkpoints" / "last", 5)
    checkpoint(runs / "bare7" / "checkpoints" / "last", 7)
    assert main(["runs", "compare", "runs/bare5", "runs/bare7"]) == 0
    text = capsys.readouterr().out
    assert "the same" not in text
    assert text.splitlines()[-1].startswith("settings: not recorded in bare5, bare7 (no config.json")
    assert main(["runs", "compare", "runs/good", "runs/bare5"]) == 0
    text = capsys.readouterr().out
    assert row(text, "learning_rate") == ["learning_rate", "0.002", "-"]
    assert text.splitlines()[-1].startswith("settings: not recorded in bare5 (")


def test_compare_of_cv_runs_shows_their_number_of_folds_and_fold_seed(runs, capsys):
    """Two chords cvs of one config with 3 and 5 folds, and two `train_with_cv` runs whose folds another
    ``seed=`` drew, were compared as "settings: the same in every run"."""
    for name, folds in (("cv3", 3), ("cv5b", 5)):
        write_json(
            runs / name / "cv_progress.json",
            {"folds": folds, "songs": ["a"], "config": {"num_epochs": 2}, "done": {}, "trained": {}},
        )
    assert main(["runs", "compare", "runs/cv3", "runs/cv5b"]) == 0
    text = capsys.readouterr().out
    assert row(text, "cv.folds") == ["cv.folds", "3", "5"]
    assert "the same in every run" not in text
    for name, seed in (("seed42", 42), ("seed7", 7)):
        write_json(runs / name / "folds.json", {"seed": seed, "folds": [{}, {}]})
        trainer_run(runs / name / "fold0", [0.9])
    assert main(["runs", "compare", "--json", "runs/seed42", "runs/seed7"]) == 0
    assert json.loads(capsys.readouterr().out)["settings"] == {"cv.seed": [42, 7]}


def test_an_interrupted_chords_cv_names_the_resume_that_goes_on(runs, capsys):
    """The note said "the recipe's cv --resume RUN goes on", but `cv --resume RUN` alone was refused: the
    folds are --folds (5 by default: "that cv run has 3 folds, not 5") and the settings the run's flags and
    --config. The note now gives the folds and says the rest is the run's own command line."""
    cv = runs / "stopped_cv"
    progress = {"folds": 3, "songs": ["a", "b", "c"], "config": {"num_epochs": 2}, "done": {"0": {}}}
    write_json(cv / "cv_progress.json", progress | {"trained": {}})
    chords_run(cv / "fold0", majmin=0.5)
    text = listing(capsys)
    assert (
        "stopped_cv: 1 of 3 folds finished, no cv_scores.json: chords cv --resume runs/stopped_cv --folds 3 "
        "goes on, with the flags and --config the run was started with" in text
    ), text


@pytest.mark.parametrize("name", ["last", "best"])
def test_a_checkpoint_whose_trainer_state_is_a_fifo_does_not_stop_the_listing(runs, capsys, name):
    """A downloaded run whose checkpoints/last/trainer_state.json was a FIFO kept `runs` waiting for a writer
    forever (the epochs it reached are read from it): no run was listed."""
    state = runs / "good" / "checkpoints" / name / "trainer_state.json"
    state.unlink()
    os.mkfifo(state)
    status = returns_without_waiting(lambda: main(["runs"]), state)
    text = capsys.readouterr().out
    assert status == 0 and row(text, "better")[1:3] == ["chords", "finished"]
    assert row(text, "good")[1:3] == ["chords", "finished"]
    assert f"checkpoints/{name} lacks trainer_state.json" in text


def test_a_run_whose_config_json_is_a_fifo_is_unreadable_saying_so(runs, capsys):
    """A run whose config.json was a FIFO was called 'config.json: missing', though it is there."""
    (runs / "good" / "config.json").unlink()
    os.mkfifo(runs / "good" / "config.json")
    text = listing(capsys)
    assert row(text, "good")[1:3] == ["-", "unreadable"]
    assert "good: runs/good/config.json: is a FIFO, not a regular file" in text


@pytest.mark.parametrize(
    "argv, suggestion",
    [
        (["runs", "--jsn"], "did you mean --json?"),
        (["runs", "--sortt", "name"], "did you mean --sort?"),
        (["runs", "compare", "--jsn", "a", "b"], "did you mean --json?"),
        (["cache", "info", "--roott", "x"], "did you mean --root?"),
        (["info", "--frobnicate"], None),  # (nothing close: said as before, without a guess)
    ],
)
def test_a_misspelt_flag_of_runs_or_cache_gets_a_did_you_mean_as_the_recipes_do(argv, suggestion, capsys):
    """`runs --jsn` said only "unrecognized arguments: --jsn", where `chords train --num_epoch` names
    --num_epochs: a script's author looked the flag up in --help."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "unrecognized arguments" in err, err
    assert (suggestion in err) if suggestion else "did you mean" not in err, err


@pytest.mark.parametrize(
    "argv, said",
    [
        (["cache", "info", "--force"], "unrecognized arguments: --force\n"),  # (prune's and clear's flag)
        (["cache", "info", "--forc"], "unrecognized arguments: --forc\n"),
        (["cache", "prune", "--forc"], "unrecognized arguments: --forc; did you mean --force?\n"),
    ],
)
def test_a_flag_of_another_cache_command_is_not_offered_as_the_one_meant(argv, said, capsys):
    """`cache info --force` said 'unrecognized arguments: --force; did you mean --force?': the hint counted
    the flags of every cache command, not of the one given, and offered the very flag refused."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.endswith(said), err


@pytest.mark.parametrize(
    "argv, said",
    [
        (
            ["cache", "--root", "/data", "info"],
            "--root is a flag of info, clear, prune: give it after the command",
        ),
        (["cache", "--force", "prune"], "--force is a flag of clear, prune: give it after the command"),
    ],
)
def test_a_cache_command_flag_given_before_the_command_says_where_it_goes(argv, said, capsys):
    """`cache --root /data info` said only "argument command: invalid choice: '/data' (choose from 'info',
    'clear', 'prune')", and `cache --force prune` "unrecognized arguments: --force; did you mean --force?"."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and said in err and f"cache {argv[-1]} {argv[1]} ..." in err, err
    assert "did you mean" not in err, err


@pytest.mark.parametrize("argv", [["--verison"], ["--versio"]])
def test_a_misspelt_version_flag_of_the_audiotrain_command_gets_a_did_you_mean(argv, capsys):
    """`audiotrain --verison` said only 'the following arguments are required: command': with no command
    given, argparse names the missing command before the unknown flag, so the hint never came."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.endswith("; did you mean --version?\n"), err


def test_a_clap_run_whose_evaluation_after_training_failed_is_failed_with_its_error(tmp_path, capsys):
    """A CLAP run whose evaluation after training raised (a model that diverged, a clip it could not read)
    was listed, since 0958586b, as interrupted with a resume that scores it, which fails the same way: the
    recipe records the error (evaluation_failed.json) and the listing gives it, as the chord recipe's."""
    from audiotrain.recipes.clap import train as clap_train

    run = tmp_path / "runs" / "clapfail"
    clap_run(run, r_at_1=None)
    write_json(run / "history.json", {"epoch": [0, 1, 2], "val_loss": [2.0, 1.9, 1.8]})
    clap_train._record_failed_evaluation(run, ValueError("the loss is NaN"))
    assert main(["runs", str(tmp_path / "runs")]) == 0
    text = capsys.readouterr().out
    assert row(text, "clapfail")[1:3] == ["clap", "failed"], text
    assert "clapfail: trained, its evaluation after training failed: the loss is NaN" in text, text


def test_another_users_run_folder_is_unreadable_as_a_folder_not_as_a_file_in_it(runs, capsys, monkeypatch):
    """A teacher listing the students' runs, one made under umask 077: its note was "runs/good/
    cv_progress.json: Permission denied", a file no chords run has, the first one the listing looked for."""
    closed_to_this_user(monkeypatch, runs / "good")
    text = listing(capsys)
    assert row(text, "good")[1:3] == ["-", "unreadable"]
    assert (
        "good: runs/good: Permission denied: another user's folder, made under a umask such as 077?" in text
    )
    assert "chmod -R go+rX runs/good" in text and "runs/good/cv_progress.json" not in text
    assert row(text, "better")[1:3] == ["chords", "finished"]  # (the others are listed as they are)


def test_a_run_folder_inside_another_users_closed_folder_is_one_line_naming_that_folder(
    runs, capsys, monkeypatch
):
    """`runs STUDENT/runs` and `runs compare` of runs inside a student's closed folder (a home folder of mode
    700, a runs/ made under umask 077) stopped with a traceback ending in "PermissionError: [Errno 13]
    Permission denied: 'runs/good'"."""
    closed_to_this_user(monkeypatch, runs)
    with pytest.raises(SystemExit) as exit:
        main(["runs", "runs/good"])
    assert exit.value.code == 2
    error = capsys.readouterr().err
    assert "runs/good: cannot look into runs (Permission denied): another user's folder" in error, error
    assert "chmod go+x runs && chmod -R go+rX runs/good" in error
    with pytest.raises(SystemExit) as exit:
        main(["runs", "compare", "runs/good", "runs/better"])
    assert exit.value.code == 2
    error = capsys.readouterr().err
    assert "runs/good: not a run to compare: cannot look into runs (Permission denied)" in error, error
    assert "0 of the 2 runs given can be compared" in error


def test_hidden_folders_beside_the_runs_are_not_listed(runs, capsys):
    """A teacher listing a student's home folder: its .cache and .config were rows of unreadable runs, their
    notes suggesting chmod -R go+rX on them."""
    (runs / ".config" / "matplotlib").mkdir(parents=True)
    text = listing(capsys)
    assert ".config" not in text and row(text, "good")[1:3] == ["chords", "finished"]


def test_a_run_killed_in_training_names_the_resume_from_its_last_checkpoint(runs, capsys):
    chords_run(runs / "killed", epochs=5, trained=False)  # SIGKILL in epoch 2 of 5: last saved after 1
    text = listing(capsys)
    assert row(text, "killed")[2] == "failed"
    assert (
        "killed: no trained.json: its training did not end (an error or a kill stopped it); resumable: "
        "--resume runs/killed/checkpoints/last (epoch 1) with the same flags goes on" in text
    )
    # A kill between the two renames of a save leaves `last` under its hidden prev name: the resume of
    # `last` loads it, so the run is as resumable.
    (runs / "killed" / "checkpoints" / "last").rename(runs / "killed" / "checkpoints" / ".last.prev-0a1b2c3d")
    assert "--resume runs/killed/checkpoints/last (epoch 1) with the same flags goes on" in listing(capsys)
    shutil.rmtree(runs / "killed" / "checkpoints")  # killed before its first save: nothing to resume
    text = listing(capsys)
    assert "killed: no trained.json: its training did not end (an error or a kill stopped it)\n" in text
    clap_run(runs / "clapkilled", r_at_1=None)
    (runs / "clapkilled" / "history.json").unlink(missing_ok=True)
    assert "--resume runs/clapkilled/checkpoints/last (epoch 3) with the same flags goes on" in listing(
        capsys
    )


def test_a_killed_runs_leftover_gone_since_the_listing_leaves_it_failed_and_resumable(runs, capsys):
    """A `.last.prev-*` gone between the listing of the folder and its stat (a save's cleanup; here a
    dangling link) raised FileNotFoundError, and the run was listed as "unreadable" with only that error."""
    chords_run(runs / "killed", epochs=5, trained=False)
    checkpoints = runs / "killed" / "checkpoints"
    (checkpoints / "last").rename(checkpoints / ".last.prev-0a1b2c3d")
    (checkpoints / ".last.prev-1a1b2c3d").symlink_to(checkpoints / "gone")
    text = listing(capsys)
    assert row(text, "killed")[2] == "failed"
    assert "--resume runs/killed/checkpoints/last (epoch 1) with the same flags goes on" in text


def test_status_lists_only_the_runs_of_those_statuses(runs, capsys):
    text = listing(capsys, "--status", "interrupted,failed", "--sort", "majmin")
    names = [line.split()[0] for line in text.split("\nnotes:")[0].splitlines()[1:]]
    assert names == ["stopped", "clapcv", "crashed", "unscored"]  # (majmin best first, then the rest)
    assert "good" not in text and "crashed: no trained.json" in text
    assert [r["name"] for r in json.loads(listing(capsys, "--status", "failed", "--json"))] == [
        "clapcv",
        "crashed",
    ]
    assert listing(capsys, "--status", "running") == "no running runs in runs\n"
    with pytest.raises(SystemExit) as stopped:
        main(["runs", "--status", "runing"])
    assert stopped.value.code == 2
    assert "--status runing: no such status; expected one or more of finished, interrupted" in (
        capsys.readouterr().err
    )


def test_a_run_killed_in_training_shows_the_best_val_loss_its_last_checkpoint_saved(runs, capsys):
    chords_run(runs / "killed", epochs=5, trained=False)  # no history.json: written as training ends
    state_file = runs / "killed" / "checkpoints" / "last" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    rows = [
        {"epoch": 0, "step": 2, "train_loss": 4.0},
        {"epoch": 0, "val_loss": 3.5},
        {"epoch": 1, "val_loss": 2.25},
    ]
    state["history"] = {"rows": rows}
    write_json(state_file, state)
    text = listing(capsys, "--sort", "val_loss")
    assert row(text, "killed")[2] == "failed" and row(text, "killed")[6:8] == ["val_loss", "2.25"]
    listed = {r["name"]: r for r in json.loads(listing(capsys, "--json"))}
    assert listed["killed"]["scores"] == {"val_loss": 2.25} and listed["killed"]["score_name"] == "val_loss"
    assert listed["crashed"]["scores"] == {}  # (a checkpoint that saved no history: still no score)


def test_a_run_whose_last_checkpoint_record_was_cut_short_says_it_cannot_be_loaded(runs, capsys):
    state_file = runs / "crashed" / "checkpoints" / "last" / "trainer_state.json"
    state_file.write_bytes(state_file.read_bytes()[:40])  # (an rsync or copy to another disk cut short)
    text = listing(capsys)
    assert row(text, "crashed")[2] == "failed"
    assert "crashed: no trained.json: its training did not end (an error or a kill stopped it); " in text
    assert "checkpoints/last's trainer_state.json: not valid JSON at line " in text
    assert "(deleted, or a copy cut short): it cannot be loaded" in text
    assert "good: " not in text  # (its checkpoints are whole)


def test_listing_runs_that_no_process_holds_imports_neither_mlx_nor_the_trainer(runs):
    """`audiotrain runs` imported mlx and the checkpoint code (~0.2 s of CPU, twice the rest of the command)
    to ask each folder whether a live fit held it, though a folder without a claim file has none, and mlx
    again with the cv runs' folder names (audiotrain.cross_validation imported audiotrain.metrics). A later
    top-level import must not bring them back."""
    heavy = ("mlx", "scipy", "torch", "audiotrain.train")
    done, status, loaded = run_as_main("audiotrain", ["runs", "runs"], heavy, cwd=runs.parent)
    assert done.returncode == 0 and status == 0, done.stderr
    assert row(done.stdout, "good")[2] == "finished" and row(done.stdout, "crashed")[2] == "failed", (
        done.stdout
    )
    assert loaded == [], done.stderr


def test_a_run_whose_checkpoints_folder_is_closed_to_this_user_is_not_named_by_its_lock_file(
    runs, capsys, monkeypatch
):
    """A teacher listing a student's run whose checkpoints/ was made under umask 077: its note named
    "runs/good/checkpoints/.audiotrain-fit.lock: Permission denied", a hidden file of audiotrain's that no
    fit had left there (the look for a live fit's claim raised, where finding none is the answer), and its
    row lost its date."""
    closed_to_this_user(monkeypatch, runs / "good" / "checkpoints")
    text = listing(capsys)
    assert row(text, "good")[2] == "unreadable" and row(text, "good")[3] != "-", text
    assert "good: runs/good/checkpoints/" in text and CLAIM_FILE not in text, text
    assert row(text, "better")[1:3] == ["chords", "finished"]
