"""A chord run's pairing settings (``--data.annotations``, ``--data.pairs``, ``--data.jams_annotation``) from
the user's side: recorded so that the run repeats, resumes and is scored again from any folder."""

import json
import os
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
        with pytest.raises(SystemExit) as stop:
            chords.main([*command, *flags, *TINY, "--run_dir", str(tmp_path / "run")])
        assert stop.value.code == 2
        assert named in capsys.readouterr().err
        assert not (tmp_path / "run").exists()
