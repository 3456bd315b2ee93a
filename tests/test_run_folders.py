"""recipes/_run.py: the run-folder policy both recipes share, their run record and resume command."""

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from shlex import quote  # (a temporary folder with a space in its path: quoted in commands)

from audiotrain.recipes._run import (
    OutputFolderError,
    check_can_write,
    check_checkpoint_folder,
    check_run_folder,
    claim_run_folder,
    clear_checkpoints,
    clear_run_outputs,
    create_run_folder,
    forget_run_that_never_trained,
    holding_run_folders,
    refuse_existing_outputs,
    resume_command,
    resumes_run_in,
    shared_run_folder_name,
    stop_status_of_rank,
    write_run_record,
)
from audiotrain.train.checkpoint import FolderInUseError

import numpy as np
import pytest

from tests import deadlines
from tests.other_users import another_users_mlx_folder, closed_to_this_user


def test_default_run_folders_are_unique_when_runs_start_in_the_same_second(tmp_path, monkeypatch):
    monkeypatch.setattr("time.strftime", lambda fmt: "20260101-120000")  # every run starts "now"
    made: list[Path] = []
    threads = [
        threading.Thread(target=lambda: made.append(create_run_folder(None, "chords", tmp_path)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        deadlines.join(t, "create_run_folder in one of 8 threads at once", 60)
    names = sorted(p.name for p in made)
    assert len(set(names)) == 8 and "chords-20260101-120000" in names and "chords-20260101-120000-8" in names
    assert all(p.is_dir() and not any(p.iterdir()) for p in made)


def test_a_jobs_shared_default_run_folder_name_skips_a_name_taken_in_the_same_second(tmp_path, monkeypatch):
    """A chords cv (or example) run started in the same second as another run took that run's folder."""
    monkeypatch.setattr("time.strftime", lambda fmt: "20260101-120000")
    (tmp_path / "chords-cv-20260101-120000").mkdir()
    assert shared_run_folder_name("chords-cv", tmp_path) == tmp_path / "chords-cv-20260101-120000-2"


def test_a_folder_holding_files_is_refused_unless_overwrite_or_resume_inside(tmp_path):
    run = tmp_path / "run"
    assert check_run_folder(run, "--run_dir", overwrite=False) is False  # new
    run.mkdir()
    assert check_run_folder(run, "--run_dir", overwrite=False) is False  # empty
    (run / "config.json").write_text(json.dumps(RUN_RECORD))
    # No checkpoint to continue from (a run stopped before its first step): no --resume is suggested.
    with pytest.raises(
        FileExistsError, match=r"--run_dir .*run already holds files.*--overwrite.*no checkpoint"
    ):
        check_run_folder(run, "--run_dir", overwrite=False)
    (run / "checkpoints" / "last").mkdir(parents=True)
    (run / "checkpoints" / "last" / "trainer_state.json").write_text("{}")
    with pytest.raises(FileExistsError, match=r"--overwrite .*--resume .*run/checkpoints/last'? to continue"):
        check_run_folder(run, "--run_dir", overwrite=False)
    assert check_run_folder(run, "--run_dir", overwrite=False, resume=run / "checkpoints" / "last") is False
    assert check_run_folder(run, "--run_dir", overwrite=True) is True
    with pytest.raises(FileExistsError, match="is a file"):
        check_run_folder(run / "config.json", "--out", overwrite=True)


def test_overwrite_removes_only_the_runs_own_outputs(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints" / "last").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    (run / "notes.txt").write_text("mine")
    lines = []
    clear_run_outputs(run, ("config.json", "checkpoints", "history.json"), lines.append)
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]
    assert lines == [
        f"--overwrite: removed the previous run's config.json, checkpoints from {run}",
        f"--overwrite: kept what the previous run did not write in {run}: notes.txt",  # (named too)
    ]


def test_overwrite_does_not_name_the_files_macos_wrote_in_the_run_folder_as_the_users(tmp_path):
    """A run folder on an exFAT drive used from a Mac: .DS_Store, and an AppleDouble twin beside each file.
    --overwrite named them, "kept what the previous run did not write in run: .DS_Store, ._config.json,
    checkpoints/.DS_Store", as the user's files; a file of the user's is still named."""
    run = tmp_path / "run"
    (run / "checkpoints" / "last").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    for name in (".DS_Store", "._config.json", "checkpoints/.DS_Store", "checkpoints/._last"):
        (run / name).write_bytes(b"\x00\x05\x16\x07")
    lines = []
    clear_run_outputs(run, ("config.json", "checkpoints"), lines.append)
    assert lines == [f"--overwrite: removed the previous run's config.json, checkpoints from {run}"]
    (run / "config.json").write_text("{}")
    (run / "notes.txt").write_text("mine")
    lines = []
    clear_run_outputs(run, ("config.json", "checkpoints"), lines.append)
    assert lines[-1] == f"--overwrite: kept what the previous run did not write in {run}: notes.txt"


#: A run record as `write_run_record` writes it (the versions name the audiotrain build).
RUN_RECORD = {"config": {}, "versions": {"audiotrain": "0.1.0"}, "command": ["chords.py"]}


def test_overwrite_removes_only_the_own_entries_inside_a_folder_and_the_folders_it_emptied(tmp_path):
    """Of a folder whose own entries a recipe lists (a name read from a hand-edited record could reach out of
    it), --overwrite removes only those inside it, and the folders their removal emptied: an empty folder of
    the user's stays, named."""
    run, outside = tmp_path / "run", tmp_path / "outside.txt"
    (run / "evaluation" / "mine").mkdir(parents=True)
    (run / "evaluation" / "song1.lab").write_text("the run's")
    outside.write_text("not the run's")
    said = []
    listed = {"evaluation": lambda folder: [folder / "song1.lab", folder / ".." / ".." / "outside.txt"]}
    clear_run_outputs(run, ("evaluation",), said.append, own_entries=listed)
    assert outside.read_text() == "not the run's"
    assert sorted(p.name for p in (run / "evaluation").iterdir()) == ["mine"]
    assert said[-1] == f"--overwrite: kept what the previous run did not write in {run}: evaluation/mine"


def test_a_dead_runs_lock_file_is_not_named_among_the_users_files(tmp_path):
    """A killed run's claim (its lock file, no longer held) is no file of the user's: not listed in the
    refusal of --overwrite nor among what it kept."""
    from audiotrain.train.checkpoint import CLAIM_FILE

    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    (folder / CLAIM_FILE).write_text("")
    with pytest.raises(FileExistsError, match=r"no earlier run wrote .*\): notes\.txt\. --overwrite"):
        check_run_folder(folder, "--run_dir", overwrite=True)
    said = []
    clear_run_outputs(folder, ("config.json",), said.append)
    assert said == [f"--overwrite: kept what the previous run did not write in {folder}: notes.txt"]


def test_a_config_json_naming_versions_of_other_packages_is_the_users_not_a_run_record(tmp_path):
    """Only a record whose versions name the audiotrain build is a run's, which --overwrite replaces."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "config.json").write_text('{"versions": {"numpy": "2.0"}}')
    with pytest.raises(FileExistsError, match=r"holds files that no earlier run wrote.*: config\.json\."):
        check_run_folder(folder, "--run_dir", overwrite=True)


@pytest.mark.parametrize("text", ['{"config": {', "[1]"])
def test_a_resume_refuses_a_run_record_it_cannot_read_before_replacing_it(tmp_path, text):
    """A config.json cut short, or JSON that is no record: a resume would write a new one over it, losing the
    builds it records."""
    from audiotrain.recipes._run import check_run_record_readable

    (tmp_path / "config.json").write_text(text)
    with pytest.raises(ValueError, match=r"config\.json: the run's record cannot be read"):
        check_run_record_readable(tmp_path, continuing=True)
    check_run_record_readable(tmp_path, continuing=False)  # (a new run does not read it)


def test_overwrite_of_a_folder_of_the_users_files_is_refused_and_removes_nothing(tmp_path, capsys):
    """--overwrite into a folder that never held a run, holding the user's own files with a run's names (their
    config.json, history.json, evaluation/song2.lab): they were removed as "the previous run's", and the new
    run wrote over the one it said it kept."""
    from audiotrain.recipes.chords import cli as chords

    run = tmp_path / "mine"
    (run / "evaluation").mkdir(parents=True)
    (run / "evaluation" / "song2.lab").write_text("my own transcription\n")
    (run / "config.json").write_text('{"my": "settings"}')
    (run / "history.json").write_text("[]")
    argv = ["--preset", "quick_test", "--device", "cpu", "--run_dir", str(run), "--overwrite"]
    assert chords.main([*argv, "--data.cache_dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert f"--run_dir {run} holds files that no earlier run wrote" in err, err
    assert "config.json, evaluation, history.json" in err and "nothing was removed" in err
    assert (run / "config.json").read_text() == '{"my": "settings"}'
    assert (run / "evaluation" / "song2.lab").read_text() == "my own transcription\n"
    assert (run / "history.json").is_file()


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, '{"versions": ' + "9" * 5000 + "}"])
def test_overwrite_of_a_folder_whose_config_json_is_nested_too_deeply_names_it(tmp_path, capsys, text):
    """A config.json 100,000 arrays deep (or with a 5000-digit number) gave a raw RecursionError from
    --overwrite's test of whether it is a run record: it is none, and the refusal names it."""
    from audiotrain.recipes.chords import cli as chords

    run = tmp_path / "deep"
    run.mkdir()
    (run / "config.json").write_text(text)
    argv = ["--preset", "quick_test", "--device", "cpu", "--run_dir", str(run), "--overwrite"]
    assert chords.main([*argv, "--data.cache_dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert f"--run_dir {run} holds files that no earlier run wrote" in err and ": config.json." in err, err
    assert (run / "config.json").read_text() == text


@pytest.mark.parametrize(
    "record, recipe, kind",
    [
        ({**RUN_RECORD, "songs": {"train": []}}, "clap", "a chords run (its config.json)"),
        ({**RUN_RECORD, "model_source": "ckpt", "clips": {}}, "chords", "a clap run (its config.json)"),
        # (a chords record told by its config alone: its decoding settings)
        ({**RUN_RECORD, "config": {"decode": {}}}, "clap", "a chords run (its config.json)"),
    ],
)
def test_overwrite_refuses_a_run_of_the_other_recipe(tmp_path, record, recipe, kind):
    """`clap --out CHORDS_RUN --overwrite` removed the chords run's checkpoints (and the other way round),
    leaving a mix of the two runs' files."""
    from audiotrain.recipes._run import check_run_folder

    run = tmp_path / "run"
    (run / "checkpoints" / "best").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(record))
    with pytest.raises(FileExistsError, match=rf"--out {run} holds {re.escape(kind)}.*nothing was removed"):
        check_run_folder(run, "--out", overwrite=True, recipe=recipe)
    assert check_run_folder(run, "--out", overwrite=True, recipe="chords" if recipe == "clap" else "clap")


def test_overwrite_of_a_cv_run_refuses_a_folder_that_holds_a_run_of_another_kind(tmp_path):
    """`clap cv --out CHORDS_RUN --overwrite` wrote its folds.json beside the chords run's files, and a failed
    cv left the folder listed as a broken cv run."""
    from audiotrain.recipes._run import check_run_folder, holds_json_record

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(RUN_RECORD))
    cv_record = holds_json_record("folds.json", ("data", "seed", "folds"))
    with pytest.raises(FileExistsError, match=r"holds a run of another kind \(its config\.json\)"):
        check_run_folder(run, "--out", overwrite=True, holds_run=cv_record, outputs=["folds.json"])
    (run / "config.json").unlink()
    (run / "cv_progress.json").write_text("{}")  # a chords cv run's, to a chords train --overwrite
    with pytest.raises(FileExistsError, match=r"holds a run of another kind \(its cv_progress\.json\)"):
        check_run_folder(run, "--run_dir", overwrite=True, recipe="chords")


def test_overwrite_refuses_a_transcription_of_the_users_in_the_earlier_runs_evaluation(tmp_path):
    """A real earlier run whose evaluation/ holds a .lab its scores.json does not list (the user's): kept by
    --overwrite, then replaced by the new run's transcription of a test song of that name."""
    from audiotrain.recipes.chords.train import refuse_kept_transcriptions

    run = tmp_path / "run"
    (run / "evaluation").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(RUN_RECORD))
    (run / "evaluation" / "scores.json").write_text(json.dumps({"per_song": {"song1": {}}}))
    (run / "evaluation" / "song1.lab").write_text("the run's\n")
    (run / "evaluation" / "notes.txt").write_text("mine\n")  # (no run writes this name: kept, no refusal)
    assert check_run_folder(run, "--run_dir", overwrite=True) is True
    refuse_kept_transcriptions(run)
    (run / "evaluation" / "song2.lab").write_text("my own\n")
    with pytest.raises(
        FileExistsError, match=r"evaluation/song2.lab in .* is not the earlier run's.*nothing was"
    ):
        refuse_kept_transcriptions(run)
    assert (run / "evaluation" / "song1.lab").is_file()  # (nothing removed)


@pytest.mark.parametrize("linked", [False, True])
def test_overwrite_of_a_run_still_training_is_refused_before_anything_is_removed(tmp_path, linked):
    # Run A trains in `run` (another process: its fit holds the checkpoint folder's claim); run B is
    # started there with --overwrite. Removing A's files would not stop A, which would go on writing into
    # B's run (and B would claim a new lock file beside A's). `linked`: its checkpoints/ is a link to
    # another disk, which --overwrite clears where it points.
    run = tmp_path / "run"
    if linked:
        (tmp_path / "other_disk" / "last").mkdir(parents=True)
        run.mkdir()
        (run / "checkpoints").symlink_to(tmp_path / "other_disk")
    (run / "checkpoints" / "last").mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text("{}")
    fit = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from audiotrain.train.checkpoint import claim_folder; "
         "claim_folder(sys.argv[1], 'x'); print('claimed', flush=True); time.sleep(60)", str(run / "checkpoints")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert deadlines.read_line(fit, "'claimed' from the child", 120).strip() == "claimed"
        with pytest.raises(FolderInUseError, match=rf"--overwrite: {run} is in use: the fit of process {fit.pid} "
                           r"on host .* is still training there.*nothing was removed"):  # fmt: skip
            clear_run_outputs(run, ("config.json", "checkpoints"), print)
        assert sorted(p.name for p in run.iterdir()) == ["checkpoints", "config.json"]
        # (the same of its checkpoint folder alone, as --overwrite clears one outside the run folder)
        with pytest.raises(FolderInUseError, match=r"is still training there.*nothing was removed"):
            clear_checkpoints(run / "checkpoints", print)
        assert (run / "checkpoints" / "last").is_dir()
    finally:
        fit.kill()
        fit.wait()
    # A run that crashed (its process is gone) left its lock file unlocked: --overwrite replaces it.
    clear_run_outputs(run, ("config.json", "checkpoints"), print)
    assert [p.name for p in run.iterdir()] == (["checkpoints"] if linked else [])
    assert not (run / "checkpoints" / "last").exists()


def test_overwrite_of_a_run_folder_another_live_process_claims_is_refused(tmp_path):
    # Run A (another process) has ended its fit, so no fit lock is held, but it still scores and exports
    # into its run folder, which it claims until its command ends.
    run = tmp_path / "run"
    (run / "checkpoints" / "best").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    a = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from audiotrain.recipes._run import claim_run_folder; claim_run_folder(Path(sys.argv[1])); "
         "print('claimed', flush=True); time.sleep(60)", str(run)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert deadlines.read_line(a, "'claimed' from the child", 120).strip() == "claimed"
        with pytest.raises(FolderInUseError, match=rf"--overwrite: {run} is in use: the run of process {a.pid} "
                           r"on host .* is still running there.*nothing was removed"):  # fmt: skip
            clear_run_outputs(run, ("config.json", "checkpoints"), print)
        assert (run / "checkpoints" / "best").is_dir() and (run / "config.json").is_file()
    finally:
        a.kill()
        a.wait()
    # A killed run left its claim file unlocked: it does not hold, and --overwrite replaces the run.
    clear_run_outputs(run, ("config.json", "checkpoints"), print)
    assert not (run / "config.json").exists() and not (run / "checkpoints").exists()


@pytest.mark.parametrize("holder", ["run", "fit"])
def test_a_new_run_into_a_folder_a_live_run_writes_says_it_is_in_use(tmp_path, holder):
    """It said "already holds files (a previous run?) ... pass --overwrite ... or --resume ...", and both
    were refused while that run lived."""
    run = tmp_path / "run"
    (run / "checkpoints" / "last").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    claim = (
        "from audiotrain.recipes._run import claim_run_folder; claim_run_folder(run)"
        if holder == "run"
        else "from audiotrain.train.checkpoint import claim_folder; claim_folder(run / 'checkpoints', 'x')"
    )
    script = f"import sys, time; from pathlib import Path; run = Path(sys.argv[1]); {claim}"
    a = subprocess.Popen(
        [sys.executable, "-c", script + "; print('claimed', flush=True); time.sleep(60)", str(run)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert deadlines.read_line(a, "'claimed' from the child", 120).strip() == "claimed"
        with pytest.raises(FolderInUseError) as refused:
            check_run_folder(run, "--run_dir", overwrite=False)
        message = str(refused.value)
        assert f"--run_dir {run} is in use: the {holder} of process {a.pid} on host " in message
        assert "--overwrite" not in message and "--resume" not in message
    finally:
        a.kill()
        a.wait()
    with pytest.raises(FileExistsError, match=r"already holds files \(a previous run\?\)"):  # (it ended)
        check_run_folder(run, "--run_dir", overwrite=False)


def test_a_checkpoint_folder_of_another_run_is_refused(tmp_path):
    other = tmp_path / "other" / "checkpoints"
    (other / "last").mkdir(parents=True)
    with pytest.raises(
        FileExistsError, match=r"--checkpoint_dir .*other/checkpoints is outside the run folder"
    ):
        check_checkpoint_folder(other, tmp_path / "new", "--checkpoint_dir", resume=None)
    check_checkpoint_folder(tmp_path / "new" / "ck", tmp_path / "new", "--checkpoint_dir", resume=None)


def test_a_resume_into_a_new_run_folder_does_not_replace_the_shared_checkpoint_folders_best_and_last(
    tmp_path,
):
    # Run A saves to an absolute --checkpoint_dir; resuming A's last into a new run folder C with the same
    # --checkpoint_dir would overwrite A's best and last (which A's evaluation scored): refused, naming
    # what to do instead, while resuming A in its own folder goes on.
    shared = tmp_path / "shared"
    last = _stopped_run(tmp_path / "A", shared, str(shared))
    with pytest.raises(FileExistsError) as refused:
        check_checkpoint_folder(shared, tmp_path / "C", "--checkpoint_dir", resume=last)
    message = str(refused.value)
    assert f"--checkpoint_dir {shared} is outside the run folder {tmp_path / 'C'}" in message
    assert "give that run's folder as --run_dir" in message and "choose an empty --checkpoint_dir" in message
    with pytest.raises(FileExistsError):  # a new default run folder too
        check_checkpoint_folder(shared, None, "--checkpoint_dir", resume=last)
    check_checkpoint_folder(shared, tmp_path / "A", "--checkpoint_dir", resume=last)
    # A fresh run's refusal never advises resuming into its own (new) run folder, which is refused as above.
    with pytest.raises(FileExistsError) as fresh:
        check_checkpoint_folder(shared, tmp_path / "B", "--checkpoint_dir", resume=None)
    expected = f"--run_dir ITS_RUN_DIR --checkpoint_dir {quote(str(shared))} --resume {quote(str(last))}"
    assert expected in str(fresh.value)


def test_overwrite_replaces_the_checkpoints_its_run_saved_outside_its_folder_and_no_other_runs(tmp_path):
    # Run A saved to an absolute --checkpoint_dir. The same command with --overwrite replaces run A, its
    # checkpoints with it (it was refused as "another run's checkpoints?"); another run B's --overwrite
    # replaces only B, and the refusal says why --overwrite does not reach A's checkpoints.
    shared = tmp_path / "shared"
    _stopped_run(tmp_path / "A", shared, str(shared))
    (shared / "epoch=004").mkdir()
    (shared / "epoch=004" / "trainer_state.json").write_text("{}")
    (shared / "notes.txt").write_text("mine")
    check_checkpoint_folder(shared, tmp_path / "A", "--checkpoint_dir", resume=None, overwrite=True)
    (tmp_path / "B").mkdir()
    (tmp_path / "B" / "config.json").write_text(json.dumps({"config": {"checkpoint_dir": "checkpoints"}}))
    for run in (tmp_path / "B", tmp_path / "new"):
        with pytest.raises(FileExistsError) as refused:
            check_checkpoint_folder(shared, run, "--checkpoint_dir", resume=None, overwrite=True)
        message = str(refused.value)
        assert (
            f"--overwrite does not lift this: it replaces only the run in {run}, whose config.json does "
            in (message)
        )
        assert f"delete {shared} yourself if they are no longer wanted" in message
        assert "choose an empty --checkpoint_dir" in message.lower()
    without = pytest.raises(FileExistsError, match="outside the run folder")
    with without:  # (without --overwrite, run A's folder is refused by check_run_folder first)
        check_checkpoint_folder(shared, tmp_path / "B", "--checkpoint_dir", resume=None)
    said = []
    clear_checkpoints(shared, said.append)
    assert sorted(p.name for p in shared.iterdir()) == ["notes.txt"]
    assert said == [f"--overwrite: removed the previous run's checkpoints epoch=004, last from {shared}"]


def test_overwrite_tells_the_recipes_checkpoints_from_the_users_copies_by_their_names(tmp_path):
    """The recipe's checkpoints (a taken name's -vN too, and a link to one) go with the run --overwrite
    replaces; a copy the user kept under a name of their own (epoch=003-mine) stays, and is named."""

    def save(folder: Path, *names: str) -> None:
        for name in names:
            (folder / name).mkdir(parents=True)
            (folder / name / "trainer_state.json").write_text("{}")

    run, shared = tmp_path / "run", tmp_path / "shared"
    save(run / "checkpoints", "best", "best-v1", "epoch=003", "epoch=3-step=40-v2", "epoch=003-mine")
    said = []
    clear_run_outputs(run, ("config.json", "checkpoints"), said.append)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch=003-mine"]
    assert (
        said[-1]
        == f"--overwrite: kept what the previous run did not write in {run}: checkpoints/epoch=003-mine"
    )
    save(shared, "best", "epoch=003-mine")
    (shared / "last").symlink_to(shared / "best")  # (rmtree refuses a link)
    clear_checkpoints(shared, said.append)
    assert sorted(p.name for p in shared.iterdir()) == ["epoch=003-mine"]


def test_existing_outputs_are_refused_before_any_work(tmp_path):
    done = tmp_path / "song.lab"
    done.write_text("edited")
    with pytest.raises(FileExistsError, match=r"refusing to replace .*song.lab.*--overwrite"):
        refuse_existing_outputs([tmp_path / "new.lab", done], overwrite=False)
    refuse_existing_outputs([done], overwrite=True)
    assert done.read_text() == "edited"


def test_resume_command_replaces_an_earlier_resume_and_quotes_paths():
    argv = ["--resume", "a/last", "--lr", "0.1", "--resume=b/last", "--data", "my songs"]
    assert resume_command("audiotrain.recipes.clap", argv, "runs/x y/interrupted") == (
        "python -m audiotrain.recipes.clap --lr 0.1 --data 'my songs' --resume 'runs/x y/interrupted'"
    )


def test_a_recipe_the_audiotrain_command_started_resumes_through_it(monkeypatch):
    """Started as `audiotrain clap` (pipx, uv tool: the console script alone on PATH), the resume command it
    printed was `python -m audiotrain.recipes.clap ...`, which finds no module there."""
    from audiotrain._invocation import through_audiotrain

    with through_audiotrain():
        resumed = resume_command("audiotrain.recipes.clap", ["--lr", "0.1"], "runs/x/interrupted")
    assert resumed == "audiotrain clap --lr 0.1 --resume runs/x/interrupted"
    # Started as `python -m audiotrain.recipes.clap`: as before (nothing of the run above is left).
    assert (
        resume_command("audiotrain.recipes.clap", [], "r") == "python -m audiotrain.recipes.clap --resume r"
    )
    # A rank of `audiotrain launch -n 2 -- audiotrain clap ...` restarts the job through the same command.
    from audiotrain.distributed import collectives, local

    monkeypatch.setattr(collectives, "joined_world_size", lambda: 2)
    monkeypatch.setenv(local.LAUNCH_OPTIONS_ENV, '["-n", "2"]')
    monkeypatch.delenv(local.PROCESSES_ENV, raising=False)
    with through_audiotrain():
        assert local.relaunch_prefix() == ["audiotrain", "launch", "-n", "2", "--"]
    assert local.relaunch_prefix() == ["python", "-m", "audiotrain", "launch", "-n", "2", "--"]
    # A rank of the recipe's own local processes (started by that launcher or not): the recipe's command
    # starts them again by itself.
    monkeypatch.setenv(local.PROCESSES_ENV, "2")
    assert local.relaunch_prefix() is None


def test_the_resume_command_goes_on_in_the_interrupted_runs_folder(tmp_path, monkeypatch):
    """Without the run folder, the printed command resumed into a new default folder, whose `best` came only
    from the epochs after the resume."""
    monkeypatch.chdir(tmp_path)
    argv = ["--preset", "quick_test", "--overwrite", "--lr", "0.1"]
    assert resume_command("m", argv, "runs/chords-1/checkpoints/interrupted", "runs/chords-1") == (
        f"python -m m --preset quick_test --lr 0.1 --run_dir {quote(f'{tmp_path}/runs/chords-1')} "
        "--resume runs/chords-1/checkpoints/interrupted"
    )
    # CLAP's flag is --out, and its --overwrite may take a value; the --out given is replaced by the run's.
    argv = ["--out=old", "--overwrite", "true", "--train.epochs", "3", "--out", "r"]
    assert resume_command("m", argv, "r/checkpoints/interrupted", "r", "--out") == (
        f"python -m m --train.epochs 3 --out {quote(f'{tmp_path}/r')} --resume r/checkpoints/interrupted"
    )


def test_the_resume_command_names_its_folders_absolute_so_it_works_pasted_in_any_folder(
    tmp_path, monkeypatch
):
    """Pasted in another folder, a relative --run_dir resumed the checkpoint into a new run folder there (the
    interrupted run never got its continuation), and a relative --data named no folder."""
    (tmp_path / "my songs").mkdir()
    (tmp_path / "home" / "cache").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    argv = ["--data", "my songs", "--data.cache_dir=~/cache", "--pretrained", "org/model", "--lr", "0.1"]
    flags = ("--data", "--data.cache_dir", "--pretrained")
    command = resume_command("m", argv, "/ck", "runs/x", path_flags=flags)
    assert command == (
        f"python -m m --data {quote(f'{tmp_path}/my songs')} "
        f"{quote(f'--data.cache_dir={tmp_path}/home/cache')} --pretrained org/model --lr 0.1 "
        f"--run_dir {quote(f'{tmp_path}/runs/x')} --resume /ck"
    )  # (a hub id, which names nothing here, stays as given)


@pytest.mark.skipif(sys.platform != "linux", reason="a file name of bytes that are not UTF-8")
@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_a_resume_command_naming_a_folder_of_undecodable_bytes_prints_and_pastes(tmp_path, stream):
    """A run folder named with a byte the locale cannot decode (b'\\xff'): its resume command failed to print
    to a strict UTF-8 stdout (UnicodeEncodeError) and came out of stderr as '\\udcff', which pasted named
    another folder. It is now written in ANSI-C quotes, which a shell reads back as the folder's bytes."""
    folder = Path(os.fsdecode(bytes(tmp_path) + b"/songs \xff'x"))
    folder.mkdir()
    printing = (
        "import sys\n"
        "from audiotrain.recipes._run import resume_command\n"
        "folder = sys.argv[1]\n"
        f"print(resume_command('m', ['--data', folder], folder + '/last', folder), file=sys.{stream})"
    )
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict", "LC_ALL": "C.UTF-8"}  # a UTF-8 terminal's
    done = subprocess.run([sys.executable, "-c", printing, folder], capture_output=True, env=env)
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr
    command = getattr(done, stream).decode("utf-8").strip()
    assert "\\udcff" not in command and "$'" in command, command
    pasted = subprocess.run(["bash", "-c", f"set -- {command}; printf '%s\\0' \"$@\""], capture_output=True)
    words = pasted.stdout.split(b"\0")[:-1]
    raw = os.fsencode(folder)
    assert words == [b"python", b"-m", b"m", b"--data", raw, b"--run_dir", raw, b"--resume", raw + b"/last"]


@pytest.mark.skipif(sys.platform != "linux", reason="a file name of bytes that are not UTF-8")
def test_a_path_of_undecodable_bytes_prints_on_a_strict_utf8_stdout_from_every_command(tmp_path):
    """A finished chords run in --run_dir $'r\\xffn' ended with "error: 'utf-8' codec can't encode character
    '\\udcff'" (exit 2, the continue command after a Ctrl-C never printed) where stdout is strict UTF-8, as
    under an installed en_US.UTF-8 locale: the recipes' and `python -m audiotrain`'s streams escape it."""
    folder = os.fsdecode(bytes(tmp_path) + b"/r\xffn")
    os.mkdir(folder)
    env = {
        **os.environ,
        "PYTHONIOENCODING": "utf-8:strict",
        "LC_ALL": "C.UTF-8",
        "AUDIOTRAIN_CACHE_DIR": folder,
    }
    recipe = (  # what `python -m audiotrain.recipes.chords` (and .clap) runs, with a summary line of the run
        "import sys, types\n"
        "from audiotrain._system import run_recipe_command\n"
        "cli = types.ModuleType('summary_cli')\n"
        "cli.main = lambda: print(f'run folder: {sys.argv[1]}') or 0\n"
        "sys.modules['summary_cli'] = cli\n"
        "run_recipe_command('summary_cli')"
    )
    for command in (
        [sys.executable, "-c", recipe, folder],
        [sys.executable, "-m", "audiotrain", "cache", "info"],
    ):
        done = subprocess.run(command, capture_output=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        assert f"{tmp_path}/r\\udcffn".encode() in done.stdout, done.stdout


@pytest.mark.serial
def test_under_a_launcher_the_resume_command_starts_the_job_again(tmp_path):
    # --batch_size is per process under a launcher: the command run alone would halve the global batch.
    from tests.distributed import describe, free_starting_port, run_launcher, run_ranks

    job = (
        "import audiotrain.distributed as dist\n"
        "from audiotrain.recipes._run import resume_command\n"
        "dist.barrier()\n"
        "print(resume_command('m', ['--batch_size', '4'], 'ck'))\n"
    )
    port = str(free_starting_port(2))
    launched = run_launcher(job, tmp=tmp_path, options=["--starting-port", port])
    assert launched.returncode == 0, launched.stderr
    expected = (
        f"python -m audiotrain launch -n 2 --starting-port {port} -- python -m m --batch_size 4 --resume ck"
    )
    assert launched.stdout.splitlines() == [expected] * 2
    # Another launcher's command line is out of the ranks' sight: a comment says to use it.
    ranks = run_ranks(job, 2, timeout=60, cwd=tmp_path)
    assert all(r.returncode == 0 for r in ranks), describe(ranks)
    assert ranks[0].lines() == [
        "python -m m --batch_size 4 --resume ck  # under the launcher of this run's 2 processes, e.g. mpirun -np 2"
    ]


def test_the_first_file_claims_the_run_folder_so_a_second_run_started_at_once_is_refused(tmp_path):
    """Two runs started into one empty folder both passed the "already holds files" check and then wrote
    into it together (one's config.json beside the other's checkpoints)."""
    run = tmp_path / "run"
    assert check_run_folder(run, "--run_dir", overwrite=False) is False  # run A's checks
    assert check_run_folder(run, "--run_dir", overwrite=False) is False  # run B's, at the same time
    run.mkdir()
    write_run_record(run / "config.json", {"seed": 1}, ["a"], claim="--run_dir")  # A opens the folder first
    with pytest.raises(
        FileExistsError, match=r"--run_dir .*run was taken by another run started at the same"
    ):
        write_run_record(run / "config.json", {"seed": 2}, ["b"], claim="--run_dir")
    assert '"seed": 1' in (run / "config.json").read_text()
    assert sorted(p.name for p in run.iterdir()) == ["config.json"]  # no temporary file left
    # A run going on in its own folder (a resume) replaces its record.
    write_run_record(run / "config.json", {"seed": 3}, ["a"])
    assert '"seed": 3' in (run / "config.json").read_text()


def test_atomic_writes_use_temporary_names_of_their_own(tmp_path):
    """The temporary names were fixed (x.lab.tmp, confusion_matrix.tmp.png): two runs writing one folder
    renamed each other's file away ("No such file or directory: '.../confusion_matrix.tmp.png'")."""
    from audiotrain.chords.lab import ChordSegment, write_lab
    from audiotrain.metrics.plots import plot_confusion_matrix

    others = [tmp_path / "x.lab.tmp", tmp_path / "confusion_matrix.tmp.png"]
    for other in others:  # another writer's temporary file, about to be renamed into place
        other.write_text("the other writer's")
    write_lab(tmp_path / "x.lab", [ChordSegment(0.0, 1.0, "C:maj")])
    plot_confusion_matrix(np.eye(2), ["C", "D"], tmp_path / "confusion_matrix.png")
    assert all(other.read_text() == "the other writer's" for other in others)
    assert (tmp_path / "x.lab").read_text() == "0.000000\t1.000000\tC:maj\n"
    assert (tmp_path / "confusion_matrix.png").read_bytes().startswith(b"\x89PNG")


def test_an_output_folder_that_cannot_be_written_is_refused_naming_the_flag(tmp_path, make_read_only):
    """A read-only run folder gave a PermissionError traceback at the first write; a file among the parents a
    bare "[Errno 20] Not a directory"."""
    read_only = tmp_path / "ro"
    read_only.mkdir()
    make_read_only(read_only)
    with pytest.raises(OutputFolderError, match=r"^--run_dir .*ro: cannot write in .*ro \("):
        check_run_folder(read_only, "--run_dir", overwrite=False)
    with pytest.raises(OutputFolderError, match=r"--out .*ro/new: cannot write in .*ro .*, so .*new cannot"):
        check_run_folder(read_only / "new", "--out", overwrite=False)
    afile = tmp_path / "afile"
    afile.write_text("mine")
    with pytest.raises(
        NotADirectoryError, match=r"--run_dir .*afile/sub: .*afile is a file, not a folder, so"
    ):
        check_run_folder(afile / "sub", "--run_dir", overwrite=False)
    with pytest.raises(FileExistsError, match=r"--checkpoint_dir .*afile is a file; expected a folder"):
        check_checkpoint_folder(afile, tmp_path / "run", "--checkpoint_dir", resume=None)
    dangling = tmp_path / "link"
    dangling.symlink_to(tmp_path / "gone")  # (a disk not mounted): said so, not "a file"
    with pytest.raises(
        NotADirectoryError, match=r"^--run_dir .*link: .*link is a link to .*gone, which does not"
    ):
        check_run_folder(dangling, "--run_dir", overwrite=False)
    dangling.unlink()
    check_can_write(tmp_path / "new" / "deeper", "-o")  # made later, where it can be
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "ro"]  # the probe is gone


def test_the_run_record_holds_config_command_versions_and_the_recipe_facts(tmp_path):
    import json

    write_run_record(tmp_path / "config.json", {"seed": 3}, ["python", "-m", "x"], songs={"train": ["a"]})
    record = json.loads((tmp_path / "config.json").read_text())
    assert record["config"] == {"seed": 3} and record["command"] == ["python", "-m", "x"]
    assert record["songs"] == {"train": ["a"]}
    # One versions record for run folders and checkpoints; keys are only ever added, so readers keep working.
    assert {"audiotrain", "mlx", "numpy", "python", "platform", "OPENBLAS_CORETYPE", "blas_threads"} <= set(
        record["versions"]
    )


def test_a_resume_by_the_same_build_records_it_once_and_one_by_another_adds_it(tmp_path):
    """The README: a resume by another build adds its own to `builds`; by the same build, nothing."""
    import json

    from audiotrain._build import build_version

    path = tmp_path / "config.json"
    write_run_record(path, {"seed": 3}, ["x"])
    write_run_record(path, {"seed": 3}, ["x"], continues=True)  # (a resume rewrites its run's record)
    assert json.loads(path.read_text())["builds"] == [build_version()]
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "builds": ["0.1.0"]}))  # (as if an earlier build had begun it)
    write_run_record(path, {"seed": 3}, ["x"], continues=True)
    assert json.loads(path.read_text())["builds"] == ["0.1.0", build_version()]
    # Begun by this build, continued by another, resumed by this one again: its last part is this build's.
    path.write_text(json.dumps({**record, "builds": [build_version(), "0.1.0"]}))
    write_run_record(path, {"seed": 3}, ["x"], continues=True)
    assert json.loads(path.read_text())["builds"] == [build_version(), "0.1.0", build_version()]


def test_a_run_folder_that_cannot_take_the_runs_first_file_is_an_error_naming_the_flag(tmp_path):
    """The folder gone (or made read-only, or full) since the checks at the start: one line naming the flag
    and the file, not an OSError's traceback."""
    with pytest.raises(
        OutputFolderError, match=r"^--run_dir .*gone: cannot write config.json \(No such file"
    ):
        write_run_record(tmp_path / "gone" / "config.json", {}, ["x"], claim="--run_dir")


# ------------------------------------------------------------------ MLX's kernel cache (TMPDIR)


@pytest.fixture
def tmpdir_env(monkeypatch):
    """Only TMPDIR among the variables MLX's C++ reads for its temporary folder."""
    for name in ("TMP", "TEMP", "TEMPDIR"):
        monkeypatch.delenv(name, raising=False)
    return lambda value: monkeypatch.setenv("TMPDIR", str(value))


@pytest.mark.parametrize(
    "kind, message",
    [
        (
            "empty",
            "error: TMPDIR is set but empty (an unset shell variable?); MLX keeps the kernels it compiles",
        ),
        ("file", "is a file, not a folder; MLX keeps the kernels it compiles there: set TMPDIR to a folder"),
        ("missing", "does not exist; MLX keeps the kernels it compiles there: set TMPDIR to a folder"),
        ("read-only", "MLX cannot write the CPU kernels it compiles to"),
    ],
)
def test_an_unusable_tmpdir_is_refused_before_the_run_folder_is_made(
    tmp_path, tmpdir_env, make_read_only, capsys, kind, message
):
    """MLX's CPU backend compiles its kernels into $TMPDIR/mlx/<version>/cpu: an empty TMPDIR, a file, or a
    read-only folder failed the first step with a raw RuntimeError, after config.json was written (so the
    same command, TMPDIR fixed, was then refused: the run folder held files)."""
    from audiotrain.recipes.chords import cli as chords

    folder = {
        "empty": "",
        "file": tmp_path / "afile",
        "missing": tmp_path / "gone",
        "read-only": tmp_path / "ro",
    }
    (tmp_path / "afile").write_text("")
    (tmp_path / "ro").mkdir()
    if kind == "read-only":
        make_read_only(tmp_path / "ro")
    tmpdir_env(folder[kind])
    run = tmp_path / "run"
    argv = ["--preset", "quick_test", "--device", "cpu", "--run_dir", str(run), "--processes", "1"]
    assert chords.main([*argv, "--data.cache_dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert not run.exists() and not (tmp_path / "cache").exists()


@pytest.fixture
def shared_server_tmp(monkeypatch, tmp_path):
    return another_users_mlx_folder(monkeypatch, tmp_path / "tmp")


def test_another_users_mlx_folder_in_tmp_gives_this_user_a_kernel_folder_of_their_own(shared_server_tmp):
    """On a shared server every user but the first stopped at their first run ('MLX cannot write the CPU
    kernels it compiles to /tmp/mlx/<version>/cpu (Permission denied); set TMPDIR ...'): now a folder of
    their own is used, said in one line, and MLX compiles its kernels there."""
    from audiotrain.recipes._run import check_kernel_cache

    import mlx.core as mx

    said: list[str] = []
    check_kernel_cache(on_cpu=True, log=said.append)
    own = shared_server_tmp / f"mlx-{os.geteuid()}"
    assert os.environ.get("TMPDIR") == str(own)
    assert own.is_dir() and own.stat().st_mode & 0o777 == 0o700
    moved, first_run = said
    cache = shared_server_tmp / "mlx" / mx.__version__ / "cpu"
    assert moved.startswith(f"MLX's kernel folder {cache} cannot be written")
    assert f"kept in {own} instead, from now on" in moved and "set TMPDIR to choose another)" in moved
    assert first_run.startswith(f"first run of MLX {mx.__version__} here")
    x = mx.array([0.25, 0.5])
    mx.eval(mx.compile(lambda v: mx.arctanh(v) * 3.75 - mx.cosh(v))(x))  # (read by MLX at this compile)
    assert any((own / "mlx" / mx.__version__ / "cpu").glob("*.so"))
    del os.environ["TMPDIR"]  # a later run (a new process) finds its kernels there, in silence
    check_kernel_cache(on_cpu=True, log=said.append)
    assert os.environ.get("TMPDIR") == str(own) and len(said) == 2


def test_a_recipes_local_ranks_inherit_the_kernel_folder_its_launcher_chose(shared_server_tmp):
    """`--processes 2` on a shared server: the command checks MLX's folder before it starts mpirun, whose
    ranks get its environment, so they compile into the same folder of this user's, without a word."""
    from audiotrain.distributed.local import Mpi, _mpi_job
    from audiotrain.recipes._run import check_kernel_cache

    said: list[str] = []
    check_kernel_cache(on_cpu=True, log=said.append)
    _, rank_environment = _mpi_job(
        Mpi("mpirun", None, "mpirun on PATH"), 2, ["-m", "audiotrain.recipes.chords"]
    )
    assert rank_environment["TMPDIR"] == str(shared_server_tmp / f"mlx-{os.geteuid()}")
    assert sum("kept in" in line for line in said) == 1


@pytest.mark.parametrize("taken", ["a link", "open to all"])
def test_an_own_kernel_folder_someone_could_have_planted_is_not_used_and_the_refusal_stays(
    shared_server_tmp, taken
):
    """/tmp/mlx-<uid> made first by someone else (a link to their folder, or a folder all may write to):
    MLX loads the kernels it finds there as code, so it is not used, and the refusal names TMPDIR."""
    from audiotrain.recipes._run import check_kernel_cache

    own = shared_server_tmp / f"mlx-{os.geteuid()}"
    if taken == "a link":
        (shared_server_tmp / "theirs").mkdir()
        own.symlink_to(shared_server_tmp / "theirs")
    else:
        own.mkdir()
        own.chmod(0o777)
    why = "is a link, which any user may have made" if taken == "a link" else "may be written by other users"
    refusal = (
        rf"TMPDIR is not set, so .*Permission denied\), and {own}, which would be used instead, {why}; set"
    )
    with pytest.raises(OutputFolderError, match=refusal):
        check_kernel_cache(on_cpu=True, log=None)
    assert "TMPDIR" not in os.environ


def test_an_empty_kernel_cache_says_the_first_steps_compile_for_a_minute(tmp_path, tmpdir_env):
    """The first run on a machine spent 50-75 s compiling CPU kernels in silence, counted as training."""
    from audiotrain.recipes._run import check_kernel_cache

    import mlx.core as mx

    tmpdir_env(tmp_path)
    said: list[str] = []
    check_kernel_cache(on_cpu=True, log=said.append)
    cache = tmp_path / "mlx" / mx.__version__ / "cpu"
    (line,) = said
    assert line.startswith(f"first run of MLX {mx.__version__} here (no compiled kernels in {cache} yet)")
    assert "about a minute" in line
    (cache / "kernel.cpp").write_text("// source")  # what a run leaves there (an empty .so is removed)
    check_kernel_cache(on_cpu=True, log=said.append)
    assert len(said) == 1


def test_an_empty_cuda_kernel_cache_says_the_first_steps_wait_minutes_and_names_the_folder(
    tmp_path, tmpdir_env, monkeypatch
):
    """On a fresh CUDA machine the first step took 137 s (170 s for quick_test) while MLX compiled its CUDA
    kernels with NVRTC, in silence: the check said the first-run wait on the CPU only. MLX's device calls are
    faked, as this machine has no CUDA."""
    from audiotrain.recipes._run import TRANSCRIPTION_COMPILE_WAIT, check_kernel_cache

    import mlx.core as mx

    monkeypatch.setattr(mx.metal, "is_available", lambda: False)
    monkeypatch.setattr(mx.cuda, "is_available", lambda: True)
    monkeypatch.delenv("MLX_PTX_CACHE_DIR", raising=False)
    tmpdir_env(tmp_path)
    said: list[str] = []
    check_kernel_cache(on_cpu=False, log=said.append)
    cache = tmp_path / "mlx" / mx.__version__ / "ptx"  # (ptx_cache_dir in MLX's cuda/jit_module.cpp)
    (line,) = said
    assert line.startswith(f"first run of MLX {mx.__version__} on this machine's GPU (no compiled CUDA")
    assert f"kept in {cache})" in line and "the first steps wait a few minutes" in line
    cache.mkdir(parents=True)
    (cache / "binary_ops.cu").write_text("// source")  # (a compile cut short: no .ptx kept yet)
    check_kernel_cache(on_cpu=False, log=said.append, wait=TRANSCRIPTION_COMPILE_WAIT)
    assert len(said) == 2 and "the first song waits a few minutes" in said[1]
    (cache / "binary_ops.ptx").write_bytes(b"ptx")  # what a run leaves there
    check_kernel_cache(on_cpu=False, log=said.append)
    assert len(said) == 2
    monkeypatch.setenv("MLX_PTX_CACHE_DIR", str(tmp_path / "kept"))  # MLX's own setting of the folder
    check_kernel_cache(on_cpu=False, log=said.append)
    assert len(said) == 3 and f"kept in {tmp_path / 'kept'})" in said[2]
    monkeypatch.setenv("MLX_PTX_CACHE_DIR", "")
    check_kernel_cache(on_cpu=False, log=said.append)
    assert said[3].startswith("MLX_PTX_CACHE_DIR is set but empty, so MLX keeps none of the CUDA kernels")


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_a_first_predict_or_evaluate_says_how_long_its_compile_takes(tmp_path, tmpdir_env, capsys, command):
    """The first `predict` after an install compiled for ~24 s and said "about a minute before the first
    steps": training's wording, which overstated the wait and spoke of steps a transcription has not."""
    from audiotrain.recipes.chords import cli as chords

    import mlx.core as mx

    tmpdir_env(tmp_path / "tmp")
    (tmp_path / "tmp").mkdir()
    (tmp_path / "song.wav").write_text("")
    where = [str(tmp_path / "song.wav")] if command == "predict" else ["--data", str(tmp_path)]
    # (A checkpoint that does not exist: the command stops once it has checked the kernel cache.)
    assert chords.main([command, "--checkpoint", str(tmp_path / "none"), *where]) == 2
    cache = tmp_path / "tmp" / "mlx" / mx.__version__ / "cpu"
    assert (
        f"first run of MLX {mx.__version__} here (no compiled kernels in {cache} yet): it compiles its CPU "
        "kernels now, up to a minute before the first song is transcribed; later runs reuse them"
    ) in capsys.readouterr().err


def _fit_saving_in(folder: Path, epochs: int) -> None:
    """Real checkpoints (``last`` and one per epoch) of a tiny fit in `folder`."""
    from audiotrain import Trainer
    from audiotrain.train.callbacks import ModelCheckpoint

    from tasks import TinyClassifier, make_batches

    saves = ModelCheckpoint(dirpath=folder, save_top_k=-1, save_last=True)
    trainer = Trainer(max_epochs=epochs, enable_progress_bar=False, logger=False, callbacks=[saves])
    trainer.fit(TinyClassifier(), make_batches(32))


def test_a_run_whose_last_save_failed_is_continued_from_its_newest_whole_checkpoint(tmp_path):
    """A full disk stopped the save of ``last`` (nothing of it left): the rerun's refusal said "it has no
    checkpoint to continue from" and offered --overwrite, which would throw the saved epochs away; the
    newest whole checkpoint (here the second epoch's) continues it."""
    import shutil

    run = tmp_path / "run"
    _fit_saving_in(run / "checkpoints", epochs=2)
    shutil.rmtree(run / "checkpoints" / "last")
    newest = run / "checkpoints" / "epoch=1-step=4"
    assert newest.is_dir()
    with pytest.raises(FileExistsError, match=f"or --resume {re.escape(quote(str(newest)))} to continue it"):
        check_run_folder(run, "--run_dir", overwrite=False)
    # ... also where an older `last` (the epoch before) is still there whole.
    shutil.copytree(run / "checkpoints" / "epoch=0-step=2", run / "checkpoints" / "last")
    with pytest.raises(FileExistsError, match=f"or --resume {re.escape(quote(str(newest)))} to continue it"):
        check_run_folder(run, "--run_dir", overwrite=False)
    # A save's hidden leftover (a kill between its last write and its rename) is not offered: the next run
    # puts it right first, and the command named a folder that was gone by then.
    (run / "checkpoints" / "epoch=1-step=4").rename(run / "checkpoints" / ".last.tmp-e1ac1a6d")
    with pytest.raises(FileExistsError) as refused:
        check_run_folder(run, "--run_dir", overwrite=False)
    message = str(refused.value)
    assert (
        ".last.tmp" not in message and f"{quote(str(run / 'checkpoints' / 'last'))} to continue it" in message
    )


def test_printed_commands_are_shell_quoted(tmp_path):
    """A run folder with a space gave `--resume my runs/x/...` and `tensorboard --logdir my runs/x/...`, which
    fail when pasted."""
    from audiotrain.recipes import _run
    from audiotrain.recipes.clap import train as clap_train
    from audiotrain.train.loggers.config import describe_loggers
    from audiotrain.train.loggers.tensorboard_logger import TensorBoardLogger

    run = tmp_path / "my runs" / "x"
    _fit_saving_in(run / "checkpoints", epochs=1)
    with pytest.raises(FileExistsError, match=f"or --resume '{run}/checkpoints/last' to continue it"):
        check_run_folder(run, "--run_dir", overwrite=False)
    logger = TensorBoardLogger(run, name="tensorboard")
    assert f"(tensorboard --logdir '{run}/tensorboard')" in describe_loggers([logger])[0]

    class Best:  # (a ModelCheckpoint whose best is not the last checkpoint)
        best_model_path = str(run / "checkpoints" / "epoch=0-step=2")

    # The command exports the checkpoint the run would have exported: the best one, else the last.
    stopped = clap_train._stopped_after_training(run, Best(), "Ctrl-C")
    best = f"'{run}/checkpoints/epoch=0-step=2'"
    assert stopped.endswith(f"clap export --checkpoint {best} --out '{run}/hf_model' --overwrite")
    Best.best_model_path = ""  # none kept by validation
    stopped = clap_train._stopped_after_training(run, Best(), "Ctrl-C")
    assert stopped.endswith(f"python -m audiotrain.recipes.clap export --checkpoint '{run}/checkpoints/last' "
                            f"--out '{run}/hf_model' --overwrite")  # fmt: skip
    assert _run.shell_command("predict", run / "best", "SONG.wav") == f"predict '{run}/best' SONG.wav"


def test_the_clap_continue_command_names_every_relative_path_absolute(tmp_path, monkeypatch):
    """The command an interrupted CLAP run prints to continue it, pasted in another folder, found no data
    (or another folder of that name) where --data, --pretrained, --config, --demo.folder or
    --dataset.zero_shot_labels was given relative."""
    from audiotrain.recipes import _run
    from audiotrain.recipes.clap import train as clap_train

    monkeypatch.chdir(tmp_path)
    relative = {"--data": "clips", "--pretrained": "model", "--config": "run.json", "--demo.folder": "demo",
                "--dataset.zero_shot_labels": "labels.txt"}  # fmt: skip
    for name in relative.values():
        if "." in name:
            (tmp_path / name).write_text("{}")
        else:
            (tmp_path / name).mkdir()
    argv = [arg for flag, name in relative.items() for arg in (flag, name)]
    command = _run.resume_command(
        "audiotrain.recipes.clap", argv, tmp_path / "run" / "checkpoints" / "interrupted", tmp_path / "run",
        "--out", path_flags=clap_train.RESUME_PATH_FLAGS,
    )  # fmt: skip
    for flag, name in relative.items():
        assert f" {flag} {quote(str(tmp_path / name))} " in f"{command} ", flag


@pytest.fixture
def nearly_full_tmpdir(tmp_path, tmpdir_env, monkeypatch):
    """TMPDIR set to a new folder ``tmp_path / "tmp"``, on a disk said to have 200 kB free; returns it."""
    import shutil

    real_usage = shutil.disk_usage

    def nearly_full(path):
        usage = real_usage(path)
        return usage._replace(free=200_000) if Path(path).is_relative_to(tmp_path / "tmp") else usage

    monkeypatch.setattr(shutil, "disk_usage", nearly_full)
    (tmp_path / "tmp").mkdir()
    tmpdir_env(tmp_path / "tmp")
    return tmp_path / "tmp"


def test_a_nearly_full_tmpdir_on_a_first_run_is_refused_before_the_run_folder_is_made(
    tmp_path, nearly_full_tmpdir, capsys
):
    """With 200 kB free in TMPDIR and no compiled kernels yet, the first step failed inside MLX's compiler: a
    47-line traceback ending in "can't write 47 bytes ...: 'No space left on device'", and a run folder
    holding config.json, which the same command was then refused for."""
    from audiotrain.recipes.chords import cli as chords

    run = tmp_path / "run"
    argv = ["--preset", "quick_test", "--device", "cpu", "--run_dir", str(run), "--processes", "1"]
    assert chords.main([*argv, "--data.cache_dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith(
            f"error: TMPDIR={tmp_path / 'tmp'}: 195 kB free; MLX compiles its CPU kernels into {tmp_path / 'tmp'}/mlx/"
        )
        and "needs at least 16 MB there: free space there or set TMPDIR to a folder with room" in err
    ), err
    assert "Traceback" not in err and not run.exists()


def test_a_nearly_full_tmpdir_holding_its_compiled_kernels_is_not_refused(nearly_full_tmpdir):
    """Only a first run compiles its kernels there: once they are, 200 kB free is enough for every run."""
    import sys

    from audiotrain._system import mlx_kernel_cache
    from audiotrain.recipes._run import check_kernel_cache

    cache = mlx_kernel_cache()
    cache.mkdir(parents=True)
    (cache / "libcompiled.so").symlink_to(os.path.realpath(sys.executable))  # (a whole ELF file)
    check_kernel_cache(on_cpu=True, log=None)


def test_a_kernel_that_cannot_be_compiled_in_tmpdir_is_one_line_and_leaves_the_folder_to_the_next_run(
    tmp_path, tmpdir_env, monkeypatch, capsys
):
    """TMPDIR filling up while the first step compiles (its kernels from an earlier run were there, the new
    ones did not fit): MLX's error, the compiler's command and its output, 47 lines, and config.json left."""
    from audiotrain.recipes.chords import cli as chords

    import mlx.core as mx

    tmpdir_env(tmp_path)
    compiler = (
        "[Compile::eval_cpu] Failed to compile function Gf4IBroadcast_f4_1: Failed to execute command with "
        f'return code 1: "g++ -std=c++17 -O3 ... -o "{tmp_path}/mlx/cpu/tmp_d5f132b0.so" 2>&1", the output is: '
        f"{tmp_path}/ccSPP64z.s: Fatal error: can't write 47 bytes to section .text of {tmp_path}/ccAHPgkp.o: "
        "'No space left on device'"
    )

    def compile_fails(*arrays):
        raise RuntimeError(compiler)

    monkeypatch.setattr(mx, "async_eval", compile_fails)
    run = tmp_path / "run"
    argv = ["--preset", "quick_test", "--device", "cpu", "--run_dir", str(run), "--processes", "1"]
    assert chords.main([*argv, "--data.cache_dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert err[
        err.index("error: ") :
    ].startswith(  # (after what the run said on stderr before its first step)
        f"error: TMPDIR={tmp_path}: MLX could not compile its CPU kernels in {tmp_path}/mlx/{mx.__version__}/cpu "
        "(No space left on device); free space there (a first run compiles all its kernels: at least 16 MB) or "
        "set TMPDIR to a folder with room\n"
    ), err
    assert "Traceback" not in err and "g++" not in err
    assert not run.exists()  # the folder it made goes (its config.json held it for a run that never was)


def test_a_rank_other_than_0_leaves_the_run_folders_check_to_rank_0(tmp_path, monkeypatch):
    """Rank 0 opens the run folder once its own checks pass: a rank that reached its check later found rank
    0's new files there and refused its own run ("--out run already holds files"), so the job failed with
    rank 1's refusal in place of rank 0's own error (1 in 10 runs of a CLAP test on a loaded machine)."""
    from audiotrain.recipes import _run

    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "data_report.txt").write_text("rank 0 opened it\n")
    with pytest.raises(FileExistsError, match="already holds files"):
        _run.check_run_folder(folder, "--out", overwrite=False)
    monkeypatch.setattr(_run, "rank", lambda: 1)
    assert _run.check_run_folder(folder, "--out", overwrite=False) is False
    with pytest.raises(FileExistsError, match="is a file"):  # what the rank can check alone, it still does
        _run.check_run_folder(folder / "data_report.txt", "--out", overwrite=False)


def _stopped_run(run: Path, checkpoints: Path, recorded_checkpoint_dir: str) -> Path:
    """A run folder whose checkpoints lie in `checkpoints` (its config.json records `recorded_...`)."""
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"config": {"checkpoint_dir": recorded_checkpoint_dir}}))
    (checkpoints / "last").mkdir(parents=True)
    (checkpoints / "last" / "trainer_state.json").write_text("{}")
    return checkpoints / "last"


def test_a_run_whose_checkpoints_are_elsewhere_is_resumed_in_its_own_folder(tmp_path):
    # --checkpoint_dir on another disk: the resume (the command printed after a Ctrl-C) goes on in the run.
    elsewhere = tmp_path / "other_disk" / "ck"
    last = _stopped_run(tmp_path / "run", elsewhere, str(elsewhere))
    assert (
        check_run_folder(tmp_path / "run", "--run_dir", False, last, checkpoint_dir=str(elsewhere)) is False
    )
    # checkpoints/ moved to another disk and replaced by a link: --resume RUN/checkpoints/last.
    offload = tmp_path / "other_disk" / "offload"
    _stopped_run(tmp_path / "linked", offload, "checkpoints")
    (tmp_path / "linked" / "checkpoints").symlink_to(offload)
    linked_last = tmp_path / "linked" / "checkpoints" / "last"
    assert check_run_folder(tmp_path / "linked", "--run_dir", False, linked_last) is False
    # Another run's checkpoints are not taken for this run's: the refusal says so, not "no checkpoint".
    with pytest.raises(FileExistsError, match=r"--resume .*ck/last is not one of its checkpoints") as refused:
        check_run_folder(tmp_path / "linked", "--run_dir", False, last)
    assert "no checkpoint" not in str(refused.value)
    # What the recipes take for "goes on in its own folder" (its record, its history) agrees.
    assert resumes_run_in(last, tmp_path / "run", str(elsewhere))
    assert resumes_run_in(linked_last, tmp_path / "linked")
    assert not resumes_run_in(last, tmp_path / "linked")


def test_a_resume_of_a_runs_own_checkpoint_elsewhere_without_its_checkpoint_dir_names_the_flag_to_give(
    tmp_path,
):
    """A run trained with --run_dir /dev/shm/run --checkpoint_dir /tmp/ck, resumed with --run_dir /dev/shm/run
    --resume /tmp/ck/last but without --checkpoint_dir, was refused as a checkpoint of another run, 'they are
    saved in /dev/shm/run/checkpoints': not where its config.json records them, nor the flag to give."""
    elsewhere = tmp_path / "other_disk" / "ck"
    last = _stopped_run(tmp_path / "run", elsewhere, str(elsewhere))
    with pytest.raises(FileExistsError) as refused:
        check_run_folder(tmp_path / "run", "--run_dir", False, last)
    said = str(refused.value)
    assert f"saved in {tmp_path / 'run' / 'checkpoints'}" not in said
    assert (
        f"its config.json records --checkpoint_dir {elsewhere}: resume with --checkpoint_dir {elsewhere}"
        in said
    )
    # A folder name a shell splits is quoted in the flag to paste, as the other hints quote theirs
    spaced = tmp_path / "other disk" / "ck"
    last = _stopped_run(tmp_path / "run2", spaced, str(spaced))
    with pytest.raises(FileExistsError, match=re.escape(f"resume with --checkpoint_dir '{spaced}'")):
        check_run_folder(tmp_path / "run2", "--run_dir", False, last)


def test_overwrite_of_a_run_whose_checkpoints_folder_is_a_link_clears_it_where_it_points_and_keeps_the_link(
    tmp_path,
):
    """checkpoints/ moved to another disk and replaced by a link: --overwrite removed the link, not the
    checkpoints (while saying it removed them), and the new run saved on the disk they were moved off."""
    offload = tmp_path / "other_disk" / "offload"
    run = tmp_path / "linked"
    _stopped_run(run, offload, "checkpoints")
    (run / "checkpoints").symlink_to(offload)
    (offload / "notes.txt").write_text("mine")
    said = []
    clear_run_outputs(run, ("config.json", "checkpoints"), said.append)
    assert (run / "checkpoints").is_symlink() and sorted(p.name for p in offload.iterdir()) == ["notes.txt"]
    assert said == [
        f"--overwrite: removed the previous run's config.json, checkpoints from {run}",
        f"--overwrite: kept what the previous run did not write in {run}: checkpoints/notes.txt",
    ]
    (offload / "notes.txt").unlink()  # (emptied, the link stays: the new run saves there)
    clear_run_outputs(run, ("checkpoints",), said.append)
    assert (run / "checkpoints").is_symlink() and offload.is_dir()


def test_with_no_complete_checkpoint_the_newer_of_interrupted_and_last_is_resumed(tmp_path):
    """Both incomplete (a full disk stopped their saves): the newer trainer state is the one to continue."""
    from audiotrain.recipes._run import newest_checkpoint
    from audiotrain.train import checkpoint as ckpt

    for name in ("interrupted", "last"):
        (tmp_path / name).mkdir()
        (tmp_path / name / ckpt.STATE_FILE).write_text("{}")  # no weights beside it: not complete
    for newer, older in (("last", "interrupted"), ("interrupted", "last")):
        os.utime(tmp_path / older / ckpt.STATE_FILE, (1_000_000, 1_000_000))
        os.utime(tmp_path / newer / ckpt.STATE_FILE, (2_000_000, 2_000_000))
        assert newest_checkpoint(tmp_path) == tmp_path / newer


def test_a_run_that_never_trained_is_forgotten_while_it_still_holds_its_folder(tmp_path):
    """A CLAP run into an existing --out whose first step failed (no room in TMPDIR for MLX's kernels) still
    holds its claim on the folder: the files it wrote go even so (the same command, the cause fixed, was
    refused for them), where they are all the folder holds; and the claim ends with the command."""
    written = ["config.json", "data_report.txt"]
    run, users = tmp_path / "run", tmp_path / "users"
    for folder in (run, users):
        folder.mkdir()
        for name in written:
            (folder / name).write_text("{}")
    (users / "notes.txt").write_text("mine")
    with holding_run_folders():
        for folder in (run, users):
            claim_run_folder(folder)
            forget_run_that_never_trained(folder, written)
        assert not (run / "config.json").exists() and not (run / "data_report.txt").exists()
    assert list(run.iterdir()) == []  # (the claim's lock file went with the command)
    assert sorted(p.name for p in users.iterdir()) == ["config.json", "data_report.txt", "notes.txt"]


def test_a_stopped_job_exits_with_the_stop_status_on_rank_0_only(monkeypatch):
    """mpirun and mlx.launch end the whole job when a rank exits non-zero: a stop status from another rank
    had rank 0 killed in its evaluation after training."""
    from audiotrain.distributed import collectives
    from audiotrain.train.interrupt import stop_exit_status

    assert stop_status_of_rank() == stop_exit_status() != 0
    monkeypatch.setattr(collectives, "is_main_process", lambda: False)
    assert stop_status_of_rank() == 0


@pytest.mark.parametrize("name", ["optimizer.safetensors", "step_state.safetensors"])
def test_a_resume_from_a_checkpoint_whose_training_state_is_damaged_is_refused_before_any_work(
    tmp_path, name
):
    """Its optimizer or step state cut short failed the resume only once the fit loaded it, after the run
    folder was written; `check_resume_folder` (a recipe's first check) names the file."""
    from audiotrain.recipes._run import check_resume_folder
    from audiotrain.train import checkpoint as ckpt

    import mlx.core as mx
    from checkpoint_writer import minimal_state

    last = tmp_path / "last"
    ckpt.write_checkpoint(last, {"w": mx.arange(3.0)}, {"m": mx.ones(4)}, {"s": mx.ones(4)}, minimal_state(1))
    assert check_resume_folder(last) == last
    os.truncate(last / name, (last / name).stat().st_size // 2)
    with pytest.raises(ckpt.CheckpointError, match=re.escape(str(last / name))):
        check_resume_folder(last)


@pytest.mark.parametrize("recipe, flag", [("chords", "--run_dir"), ("clap", "--out")])
def test_a_run_folder_name_longer_than_the_file_system_takes_is_one_error_line(
    tmp_path, capsys, recipe, flag
):
    """A --run_dir or --out of a 256-byte name, or a path beyond PATH_MAX, ended the command in a raw
    "OSError: [Errno 36] File name too long" traceback (pathlib's exists() raises on such a name)."""
    from audiotrain.recipes import chords, clap

    main = {"chords": chords.main, "clap": clap.main}[recipe]
    too_deep = tmp_path.joinpath(*["d" * 200] * 22)
    for folder, why in ((tmp_path / ("n" * 256), "256 bytes"), (too_deep, "its path would be")):
        assert main(["--preset", "quick_test", flag, str(folder)]) == 2
        err = capsys.readouterr().err
        assert f"error: {flag} {folder}: cannot be made: " in err and why in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_a_resume_command_naming_a_japanese_folder_pastes_from_an_ascii_terminal(tmp_path, stream):
    """A run folder 'runs/実験 ação' on a terminal that takes ASCII alone (PYTHONIOENCODING=ascii, as the
    recipes escape it): the commands to paste (resume, predict with, tensorboard --logdir) came out as
    'runs/\\u5b9f\\u9a13 a\\xe7\\xe3o' in single quotes, which the shell reads as those backslashes, naming no
    folder ("checkpoint folder ... does not exist"). They are now ANSI-C quoted with the name's bytes."""
    folder = str(tmp_path / "runs/実験 ação 🎸")
    printing = (
        "import sys\n"
        "from audiotrain.recipes._run import resume_command\n"
        "for stream in (sys.stdout, sys.stderr):\n"
        "    stream.reconfigure(errors='backslashreplace')  # (as the recipes do)\n"
        "folder = sys.argv[1]\n"
        f"print(resume_command('m', ['--data', folder], folder + '/last', folder), file=sys.{stream})"
    )
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "LC_ALL": "C", "LANG": "C"}  # (Python's UTF-8 mode on)
    done = subprocess.run([sys.executable, "-c", printing, folder], capture_output=True, env=env)
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr
    command = getattr(done, stream).decode("ascii").strip()
    pasted = subprocess.run(["bash", "-c", f"set -- {command}; printf '%s\\0' \"$@\""], capture_output=True)
    words = pasted.stdout.split(b"\0")[:-1]
    raw = folder.encode("utf-8")
    assert words == [b"python", b"-m", b"m", b"--data", raw, b"--run_dir", raw, b"--resume", raw + b"/last"]


def test_a_run_or_checkpoint_folder_inside_another_users_closed_folder_is_one_line_naming_it(
    tmp_path, monkeypatch
):
    """A student's --run_dir runs/mine (or --checkpoint_dir) where runs/ is another student's, made under
    umask 077 in the class's shared folder: a traceback ending in "PermissionError: [Errno 13] Permission
    denied: 'runs/mine'" before; one line naming the folder that cannot be looked into now."""
    closed = tmp_path / "runs"
    closed.mkdir()
    closed_to_this_user(monkeypatch, closed)
    with pytest.raises(OutputFolderError, match=re.escape(f"cannot look into {closed} (Permission denied)")):
        check_run_folder(closed / "mine", "--run_dir", overwrite=True)
    with pytest.raises(OutputFolderError, match=re.escape(f"--checkpoint_dir {closed / 'ck'}: cannot look")):
        check_checkpoint_folder(closed / "ck", tmp_path / "run", "--checkpoint_dir", None)


def test_a_checkpoint_of_a_run_that_clips_no_gradient_norm_passes_the_resume_check(tmp_path):
    # While the step state's grad_norm started as NaN (a9ba4ed to 5e90980: never computed without a norm
    # clip or track_grad_norm, the CLAP recipe's default), every such checkpoint was refused by --resume as
    # "step_state.safetensors: tensor grad_norm holds NaN ... the checkpoint is damaged". The optimizer
    # state is still checked: NaN there trains on to NaN.
    from audiotrain import Trainer
    from audiotrain.recipes._run import check_resume_folder
    from audiotrain.train.checkpoint import CheckpointError

    import mlx.core as mx
    from tasks import TinyClassifier, make_batches

    trainer = Trainer(
        max_epochs=1, default_root_dir=tmp_path, enable_progress_bar=False, logger=False, compile=False
    )
    trainer.fit(TinyClassifier(), make_batches())
    last = Path(trainer.checkpoint_callback.last_model_path)
    assert check_resume_folder(last) == last
    optimizer = dict(mx.load(str(last / "optimizer.safetensors")))
    name = next(k for k, v in optimizer.items() if v.size > 1)
    optimizer[name] = mx.full(optimizer[name].shape, float("nan"))
    mx.save_safetensors(str(last / "optimizer.safetensors"), optimizer)
    with pytest.raises(CheckpointError, match=rf"optimizer.safetensors: tensor {re.escape(name)} holds NaN"):
        check_resume_folder(last)


def test_overwrite_is_not_refused_for_the_macos_metadata_beside_the_earlier_runs_transcriptions(tmp_path):
    """A run folder on an exFAT drive: macOS wrote an AppleDouble twin ``._song1.lab`` beside the run's
    transcription and a ``.DS_Store`` (in a song's sub-folder too). No song's .lab is hidden, so none of
    these is in the new run's way: --overwrite goes ahead (it refused, naming ``evaluation/._song1.lab``)."""
    from audiotrain.recipes.chords.train import refuse_kept_transcriptions

    run = tmp_path / "run"
    (run / "evaluation" / "album").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(RUN_RECORD))
    (run / "evaluation" / "scores.json").write_text(json.dumps({"per_song": {"song1": {}, "album/x": {}}}))
    (run / "evaluation" / "song1.lab").write_text("the run's\n")
    (run / "evaluation" / "album" / "x.lab").write_text("the run's\n")
    appledouble = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(64)
    for twin in ("._song1.lab", "album/._x.lab", ".DS_Store", "album/.DS_Store"):
        (run / "evaluation" / twin).write_bytes(appledouble)
    (run / "evaluation" / ".Trashes").mkdir()
    (run / "evaluation" / ".Trashes" / "old.lab").write_text("trashed\n")
    assert check_run_folder(run, "--run_dir", overwrite=True) is True
    refuse_kept_transcriptions(run)  # (no error)
    (run / "evaluation" / "album" / "mine.lab").write_text("my own\n")  # (a visible one still refuses)
    with pytest.raises(FileExistsError, match=r"evaluation/album/mine.lab in .* is not the earlier run's"):
        refuse_kept_transcriptions(run)


def test_a_run_folder_made_in_the_finder_holding_only_macos_files_is_taken_as_empty(tmp_path):
    """A Mac user makes the run folder (and its checkpoints/, to link elsewhere later) in the Finder, which
    writes .DS_Store into it as it is opened (._.DS_Store and Icon\\r on an exFAT drive): it was refused,
    "--run_dir run already holds files (a previous run?)". A file of the user's beside them still is."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    for name in (".DS_Store", "._.DS_Store", "Icon\r", "checkpoints/.DS_Store"):
        (run / name).write_bytes(b"\x00\x00\x00\x01Bud1")
    assert check_run_folder(run, "--run_dir", overwrite=False) is False
    (run / "checkpoints").rename(tmp_path / "aside")
    assert check_run_folder(run, "--run_dir", overwrite=False) is False
    (run / "notes.txt").write_text("mine\n")
    with pytest.raises(FileExistsError, match=r"--run_dir .*run already holds files"):
        check_run_folder(run, "--run_dir", overwrite=False)
    # A run into the Finder's folder that never trained (`forget_run_that_never_trained`) is forgotten too.
    finder = tmp_path / "finder"
    finder.mkdir()
    (finder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (finder / "config.json").write_text("{}")
    forget_run_that_never_trained(finder, ["config.json"])
    assert [p.name for p in finder.iterdir()] == [".DS_Store"]
