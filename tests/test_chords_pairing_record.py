"""A chord run's pairing settings (``--data.annotations``, ``--data.pairs``, ``--data.jams_annotation``) from
the user's side: recorded so that the run repeats, resumes and is scored again from any folder."""

import json
import os
import shutil
from pathlib import Path

from audiotrain.datasets.chord_demo import generate_demo_songs
from audiotrain.recipes.chords import cli as chords

import pytest

TINY = [
    "--data.window_frames", "32", "--batch_size", "4", "--num_epochs", "1", "--processes", "1",
    "--model.d_model", "32", "--model.n_layers", "1", "--model.n_heads", "2", "--model.ff_dim", "64",
    "--progress_bar", "false", "--features.max_pitch_shift", "0", "--data.test_fraction", "0.25",
]  # fmt: skip


def _songs_with_annotations_apart(root: Path, n_songs: int = 4) -> None:
    """`root`/songs of audio alone, their annotations under `root`/chordlab named with underscores."""
    for song in generate_demo_songs(root / "songs", n_songs=n_songs, seed=8, song_seconds=8):
        moved = root / "chordlab" / "Album" / song.annotation_path.name.replace("song_", "SONG-")
        moved.parent.mkdir(parents=True, exist_ok=True)
        song.annotation_path.rename(moved)


@pytest.fixture(scope="module")
def apart_run(tmp_path_factory):
    """A run trained from `root` with the annotations folder given relative to it."""
    root = tmp_path_factory.mktemp("apart")
    _songs_with_annotations_apart(root)
    here = Path.cwd()
    os.chdir(root)
    try:
        argv = ["train", "--data", "songs", "--data.annotations", "chordlab", *TINY]
        code = chords.main([*argv, "--data.cache_dir", "cache", "--run_dir", "run"])
    finally:
        os.chdir(here)
    assert code == 0
    return root, root / "run"


def test_the_annotations_folder_is_recorded_absolute_and_the_run_repeats_from_another_folder(
    apart_run, tmp_path, monkeypatch
):
    """config.json kept ``"annotations": "chordlab"`` as typed: ``--config RUN/config.json`` from another
    folder then found no annotations folder."""
    root, run_dir = apart_run
    recorded = json.loads((run_dir / "config.json").read_text())["config"]["data"]
    assert recorded["annotations"] == str(root / "chordlab")
    monkeypatch.chdir(tmp_path)
    config = chords._config_from_args(
        chords._training_parser("t", "", needs_data=True).parse_args(["--data.pairs", "p.csv"])
    )
    assert config.data.pairs == str(tmp_path / "p.csv")
    assert "--data.annotations" in chords.RESUME_PATH_FLAGS and "--data.pairs" in chords.RESUME_PATH_FLAGS


@pytest.mark.parametrize("command", [[], ["cv", "--folds", "2"]])
def test_pairing_flags_on_the_demo_songs_are_refused_naming_the_flag(command, tmp_path, capsys):
    """The demo and cv on the demo songs trained with these flags ignored (even a missing path) and recorded
    them in config.json."""
    for flags, named in (
        (["--data.annotations", "/nonexistent"], "--data.annotations needs --data"),
        (["--data.pairs", "p.csv", "--data.jams_annotation", "3"], "--data.pairs and --data.jams_annotation"),
    ):
        # (cv holds out its folds: it refuses TINY's --data.test_fraction before the pairing flags)
        assert TINY[-2:] == ["--data.test_fraction", "0.25"]
        tiny = TINY[:-2] if command else TINY
        status = chords.main([*command, *flags, *tiny, "--run_dir", str(tmp_path / "run")])
        assert status == 2
        assert named in capsys.readouterr().err
        assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", [[], ["cv", "--folds", "2"]])
def test_a_data_folders_split_flags_on_the_demo_songs_are_refused_naming_them(command, tmp_path, capsys):
    """`--data.split_by folder` (and group_pattern, allow_gaps, the demo's test_fraction) on the demo songs
    trained as without it, exit 0, and config.json recorded the setting as if it had split the songs."""
    for flags, named in (
        (["--data.split_by", "folder"], "--data.split_by folder needs --data"),
        (
            ["--data.group_pattern", "x", "--data.allow_gaps", "true"],
            "x and --data.allow_gaps true need --data",
        ),
        *([] if command else [(["--data.test_fraction", "0.25"], "--data.test_fraction 0.25 needs --data")]),
    ):
        status = chords.main([*command, *flags, *TINY[:-2], "--run_dir", str(tmp_path / "run")])
        assert status == 2
        assert named in capsys.readouterr().err
        assert not (tmp_path / "run").exists()


def test_evaluate_test_songs_of_finds_the_songs_the_run_paired_with_its_annotations_folder(apart_run, capsys):
    """Without repeating the run's --data.annotations, evaluate --test_songs_of found no annotated song."""
    root, run_dir = apart_run
    capsys.readouterr()
    argv = ["evaluate", "--checkpoint", str(run_dir), "--data", str(root / "songs")]
    assert chords.main([*argv, "--test_songs_of", str(run_dir)]) == 0
    err = capsys.readouterr().err
    assert f"--test_songs_of {run_dir}: paired as that run did: --annotations {root / 'chordlab'}" in err


def test_evaluate_without_data_scores_the_runs_test_songs_in_its_data_folder(apart_run, capsys):
    """`evaluate --checkpoint RUN` without --data: the run's own held-out evaluation again, its data folder's
    test songs paired as it did (--data was required)."""
    root, run_dir = apart_run
    capsys.readouterr()
    assert chords.main(["evaluate", "--checkpoint", str(run_dir)]) == 0
    err = capsys.readouterr().err
    assert (
        f"--data not given: scoring the held-out songs of {run_dir}: its test songs in {root / 'songs'}"
        in err
    )
    assert f"--test_songs_of {run_dir}: paired as that run did: --annotations {root / 'chordlab'}" in err


def test_evaluate_test_songs_of_another_run_without_data_scores_that_runs_data_folder(
    apart_run, tmp_path, capsys
):
    """`evaluate --checkpoint CKPT --test_songs_of RUN` without --data: RUN's held-out songs, in RUN's data
    folder, not in the folder of the run CKPT came from."""
    root, run_dir = apart_run
    copy = shutil.copytree(root, tmp_path / "copy", ignore=shutil.ignore_patterns("run", "cache"))
    record = tmp_path / "run"
    record.mkdir()
    settings = json.loads((run_dir / "config.json").read_text())
    settings["config"]["data"].update(data_dir=str(copy / "songs"), annotations=str(copy / "chordlab"))
    (record / "config.json").write_text(json.dumps(settings))
    capsys.readouterr()
    assert chords.main(["evaluate", "--checkpoint", str(run_dir), "--test_songs_of", str(record)]) == 0
    err = capsys.readouterr().err
    assert (
        f"--data not given: scoring the held-out songs of {run_dir}: its test songs in {copy / 'songs'}"
        in err
    )


def _two_annotation_jams(songs: Path, out: Path) -> None:
    """`out`: the audio of `songs`, each with a JAMS whose chord annotation 0 is all N and 1 the song's."""
    for audio in sorted(songs.glob("*.wav")):
        lab = next((audio.parent.parent / "chordlab").rglob(f"*{audio.stem[len('song_') :]}.lab"))
        rows = [line.split(maxsplit=2) for line in lab.read_text().splitlines() if line.strip()]
        end = float(rows[-1][1])
        chords_of = [{"time": float(a), "duration": float(b) - float(a), "value": v} for a, b, v in rows]
        nothing = [{"time": 0.0, "duration": end, "value": "N"}]
        document = {
            "file_metadata": {"duration": end},
            "annotations": [
                {"namespace": "chord", "data": data, "annotation_metadata": {}}
                for data in (nothing, chords_of)
            ],
        }
        out.mkdir(parents=True, exist_ok=True)
        (out / audio.name).write_bytes(audio.read_bytes())
        (out / f"{audio.stem}.jams").write_text(json.dumps(document))


def test_evaluate_test_songs_of_scores_the_chord_annotation_the_run_trained_on(apart_run, tmp_path, capsys):
    """A run on GuitarSet's performed chords (--data.jams_annotation 1) was scored again against annotation 0
    by ``evaluate --test_songs_of RUN``, without a word."""
    root, run_dir = apart_run
    _two_annotation_jams(root / "songs", tmp_path / "jams")
    record = tmp_path / "run"
    record.mkdir()
    settings = json.loads((run_dir / "config.json").read_text())
    settings["config"]["data"].update(annotations=None, jams_annotation=1)
    (record / "config.json").write_text(json.dumps(settings))
    argv = ["evaluate", "--checkpoint", str(run_dir), "--data", str(tmp_path / "jams"), "--test_songs_of"]
    capsys.readouterr()
    assert chords.main([*argv, str(record)]) == 0
    err = capsys.readouterr().err
    assert f"--test_songs_of {record}: paired as that run did: --jams_annotation 1" in err
    assert "1: chord #1 (used)" in err
    assert chords.main([*argv, str(record), "--jams_annotation", "0"]) == 0
    assert f"note: --jams_annotation 0 differs from the run's --data.jams_annotation 1 ({record})" in (
        capsys.readouterr().err
    )


def test_a_resume_without_the_annotations_folder_pairs_as_the_checkpoints_run_did(
    apart_run, tmp_path, capsys
):
    """Resumed without repeating --data.annotations, the run found none of its songs: "need at least 2
    annotated songs", and no word of the flag the checkpoint was trained with."""
    root, run_dir = apart_run
    capsys.readouterr()
    argv = ["train", "--data", str(root / "songs"), *TINY, "--num_epochs", "2"]
    resume = ["--resume", str(run_dir / "checkpoints" / "last"), "--run_dir", str(tmp_path / "run")]
    assert chords.main([*argv, "--data.cache_dir", str(root / "cache"), *resume]) == 0
    err = capsys.readouterr().err  # (notes on the run: on stderr)
    assert f"paired as that run did: --data.annotations {root / 'chordlab'}" in err
    assert "2 train / 1 val / 1 test songs" in err


def test_evaluate_with_a_pairs_file_counts_the_other_reductions_as_not_used_not_as_songs_skipped(
    apart_run, tmp_path, capsys
):
    """The README's Billboard recipe (a pairs file, one row per song; four other reductions beside each)
    exited 1 with "12 songs skipped": every annotation the file did not name was a song without audio."""
    root, run_dir = apart_run
    rows = []
    for n, audio in enumerate(sorted((root / "songs").glob("*.wav"))[:2]):
        song = tmp_path / "billboard" / f"000{n}"
        song.mkdir(parents=True)
        (song / "audio.wav").write_bytes(audio.read_bytes())
        lab = next((root / "chordlab").rglob(f"*{audio.stem[len('song_') :]}.lab")).read_text()
        for reduction in ("majmin7inv", "full", "majmin"):
            (song / f"{reduction}.lab").write_text(lab)
        rows.append(f"000{n}/audio.wav,000{n}/majmin7inv.lab")
    (tmp_path / "billboard" / "pairs.csv").write_text("# billboard\n" + "\n".join(rows) + "\n")
    capsys.readouterr()
    argv = ["evaluate", "--checkpoint", str(run_dir), "--data", str(tmp_path / "billboard")]
    assert chords.main([*argv, "--pairs", str(tmp_path / "billboard" / "pairs.csv")]) == 0
    captured = capsys.readouterr()
    assert "4 annotations not used: not named in the pairs file" in captured.err
    assert "skipped" not in captured.err + captured.out
    assert "2 songs, mir_eval.chord" in captured.out


def test_annotations_of_other_albums_in_the_annotations_folder_are_not_songs_skipped(apart_run, capsys):
    """Isophonics' chordlab holds every album's annotations: evaluating one album counted the others as
    songs without audio, and exited 1."""
    root, run_dir = apart_run
    other = root / "chordlab" / "Other Album"
    other.mkdir(exist_ok=True)
    (other / "Another Song.lab").write_text("0.0 5.0 N\n")
    capsys.readouterr()
    argv = ["evaluate", "--checkpoint", str(run_dir), "--data", str(root / "songs")]
    try:
        assert chords.main([*argv, "--annotations", str(root / "chordlab")]) == 0
    finally:
        (other / "Another Song.lab").unlink()
    captured = capsys.readouterr()
    assert "1 annotation not used" in captured.err and "skipped" not in captured.err + captured.out


def test_evaluate_names_an_m4a_song_of_the_annotations_folder_and_exits_1(
    apart_run, tmp_path, capsys, monkeypatch
):
    """An AAC rip (`.m4a`) whose annotation lies in the annotations folder was dropped without a word: exit 0,
    its annotation "not used ... no song is missing"."""
    root, run_dir = apart_run
    # (run outside the data's folder, whose ffmpeg command then names it absolute: the test's own cwd may hold
    # the temporary folders, where it names them relative)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    audio = sorted((root / "songs").glob("*.wav"))
    data = tmp_path / "songs"
    data.mkdir()
    (data / audio[0].name).write_bytes(audio[0].read_bytes())
    (data / f"{audio[1].stem}.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(100))
    capsys.readouterr()
    argv = ["evaluate", "--checkpoint", str(run_dir), "--data", str(data)]
    assert chords.main([*argv, "--annotations", str(root / "chordlab"), "-o", str(tmp_path / "ev")]) == 1
    captured = capsys.readouterr()
    assert f"{data / audio[1].stem}.m4a: the audio of SONG-" in captured.err
    assert (
        f"ffmpeg -i {data / audio[1].stem}.m4a {data / audio[1].stem}.flac" in captured.err
    )  # (outside cwd)
    assert "no song is missing" not in captured.err
    assert "1 song scored; 1 song skipped" in captured.out + captured.err


@pytest.mark.timeout(300)  # (the first `import mlflow` on a loaded machine)
def test_a_required_logger_that_cannot_start_leaves_no_run_folder_on_a_data_folder(
    apart_run, tmp_path, monkeypatch, capsys
):
    """On a data folder the refused run left config.json and data_report.txt, and the same command, the
    logger fixed, was refused: "--run_dir ... already holds files"."""
    import socket

    for var in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(var, raising=False)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{sock.getsockname()[1]}"
    root, _ = apart_run
    run = tmp_path / "run"
    argv = ["train", "--data", str(root / "songs"), "--data.annotations", str(root / "chordlab"), *TINY]
    logger = ["--logger", "mlflow", "--logger.tracking_uri", nowhere, "--logger.required", "true"]
    assert chords.main([*argv, "--data.cache_dir", str(root / "cache"), "--run_dir", str(run), *logger]) == 2
    assert "--logger.required" in capsys.readouterr().err
    assert not run.exists()


def test_evaluates_ambiguity_message_names_evaluates_pairs_flag(apart_run, capsys):
    """evaluate said "list its pair in a --data.pairs file", a flag evaluate does not have (--pairs)."""
    root, run_dir = apart_run
    first = sorted((root / "chordlab").rglob("*.lab"))[0]
    twin = root / "chordlab" / "Twin" / first.name
    twin.parent.mkdir(exist_ok=True)
    twin.write_text(first.read_text())
    capsys.readouterr()
    argv = ["evaluate", "--checkpoint", str(run_dir), "--data", str(root / "songs")]
    try:
        assert chords.main([*argv, "--annotations", str(root / "chordlab")]) == 1
    finally:
        twin.unlink()
    assert (
        "not paired; list its pair in a pairs file (--data.pairs, evaluate's --pairs)"
        in capsys.readouterr().err
    )


def test_the_help_says_how_names_match_in_an_annotations_folder(capsys):
    """The help said "spaces, underscores and hyphens ignored": Song_00 does not pair song00, as it implied."""
    for command in (["evaluate"], ["train"]):
        status = chords.main([*command, "--help"])
        assert status == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "each run of spaces, underscores and hyphens read as one separator" in text


@pytest.mark.parametrize("command", [["train"], ["cv", "--folds", "2"]])
def test_demo_flags_beside_a_data_folder_are_said_to_be_unused(command, tmp_path, capsys):
    """A guitarist who wanted the demo songs trained beside their own gave `train --data DIR --data.demo_songs
    8`: the run trained on DIR alone, said nothing, and recorded 8 demo songs in config.json."""
    songs = tmp_path / "songs"
    generate_demo_songs(songs, n_songs=4, seed=8, song_seconds=8)
    tiny = TINY[:-2] if command[0] == "cv" else TINY
    for k, flags in enumerate(
        (["--data.demo_songs", "8"], ["--data.demo_seconds", "10", "--data.demo_seed", "3"])
    ):
        argv = [*command, "--data", str(songs), *flags, *tiny, "--data.cache_dir", str(tmp_path / "cache")]
        assert chords.main([*argv, "--run_dir", str(tmp_path / f"run{k}")]) == 0
        err = capsys.readouterr().err
        given = " and ".join(f"{flag} {value}" for flag, value in zip(flags[::2], flags[1::2]))
        assert f"note: {given} {'is' if k == 0 else 'are'} not used: a run on a data folder" in err
        assert "--init_from DEMO_RUN" in err
