"""A chord run repeated from its record (``--config RUN/config.json``) on a data folder that changed since,
and resumed with the settings that record holds."""

import json
import shutil
from importlib import metadata

from audiotrain.datasets.chord_demo import generate_demo_songs
from audiotrain.recipes.chords import cli as chords

import mlx.core as mx

TINY = [
    "--data.window_frames", "32", "--batch_size", "4", "--num_epochs", "1", "--save_every", "0",
    "--model.d_model", "32", "--model.n_layers", "1", "--model.n_heads", "2", "--model.ff_dim", "64",
    "--progress_bar", "false", "--processes", "1",
]  # fmt: skip


def test_a_repeat_from_config_json_says_when_the_data_folder_no_longer_holds_the_runs_songs(tmp_path, capsys):
    """README: `--config RUN/config.json` repeats the run. On a data folder that had gained a song since, the
    repeat trained on other songs than the run it repeated, to other weights, without a word (config.json
    lists the songs of each part, so the difference was there to be seen)."""
    songs = tmp_path / "songs"
    generate_demo_songs(songs, n_songs=5, seed=3, song_seconds=6)
    cache = ["--data.cache_dir", str(tmp_path / "cache")]
    assert chords.main(["train", "--data", str(songs), *TINY, *cache, "--run_dir", str(tmp_path / "a")]) == 0
    record = tmp_path / "a" / "config.json"
    capsys.readouterr()
    # The same folder: the same songs, nothing to say.
    assert chords.main(["train", "--config", str(record), "--run_dir", str(tmp_path / "b")]) == 0
    assert "not those of the run" not in capsys.readouterr().err
    for suffix in (".wav", ".lab"):  # a song added since (a copy of one under a new name)
        shutil.copy(songs / f"song_000{suffix}", songs / f"late_song{suffix}")
    assert chords.main(["train", "--config", str(record), "--run_dir", str(tmp_path / "c")]) == 0
    err = capsys.readouterr().err
    part = next(p for p, names in json.loads((tmp_path / "c" / "config.json").read_text())["songs"].items()
                if "late_song" in names)  # fmt: skip
    assert (
        f"note: this run's songs are not those of the run of {record}: "
        f"1 song it did not have: late_song ({part})" in err
    ), err
    assert "so this is another run" in err


def test_config_json_records_the_device_and_the_packages_the_run_trained_with(tmp_path):
    """config.json recorded `"device": "auto"` alone: which device a run trained on (the CPU or a GPU,
    whose float rounding differs), and which one, was not in the run folder's record; nor were the versions
    of the packages beside MLX and numpy that compute its numbers (soxr resamples, mir_eval scores)."""
    songs = tmp_path / "songs"
    generate_demo_songs(songs, n_songs=4, seed=3, song_seconds=6)
    argv = ["train", "--data", str(songs), *TINY, "--data.cache_dir", str(tmp_path / "cache")]
    assert chords.main([*argv, "--device", "cpu", "--run_dir", str(tmp_path / "a")]) == 0
    record = json.loads((tmp_path / "a" / "config.json").read_text())
    assert record["config"]["device"] == "cpu"
    cpu = mx.device_info(mx.cpu)
    assert record["device_used"] == {
        "kind": "cpu", "name": cpu.get("device_name"), "architecture": cpu.get("architecture")
    }  # fmt: skip
    assert record["packages"]["mir_eval"] == metadata.version("mir_eval")
    assert record["packages"]["soxr"] == metadata.version("soxr")


def test_a_resume_refused_for_its_settings_names_the_record_that_holds_them_all(tmp_path, capsys):
    """`--resume RUN/checkpoints/epoch=000` without the run's flags was refused naming each setting that
    differs (model, demo songs, over several lines' worth), but not that RUN/config.json holds every one of
    them and `--config` repeats them; with it the resume goes on and ends on the unbroken run's weights."""
    argv = [*TINY, "--num_epochs", "2", "--save_every", "1", "--data.demo_songs", "4",
            "--data.demo_test_songs", "1", "--data.demo_seconds", "6",
            "--data.cache_dir", str(tmp_path / "cache")]  # fmt: skip
    assert chords.main([*argv, "--run_dir", str(tmp_path / "a")]) == 0
    first = tmp_path / "a" / "checkpoints" / "epoch=000"
    capsys.readouterr()
    assert chords.main(["--resume", str(first), "--run_dir", str(tmp_path / "b")]) != 0
    record = tmp_path / "a" / "config.json"
    err = capsys.readouterr().err
    assert (
        f"Every setting of its run is in {record}: --config {record} --resume {first} resumes with them"
        in err
    )
    assert (
        chords.main(["--config", str(record), "--resume", str(first), "--run_dir", str(tmp_path / "b")]) == 0
    )
    weights = "checkpoints/last/model.safetensors"
    assert (tmp_path / "b" / weights).read_bytes() == (tmp_path / "a" / weights).read_bytes()


def test_the_resume_command_a_refusal_names_is_one_a_shell_reads_back(tmp_path, capsys):
    """The '--config RUN/config.json --resume RUN/checkpoints/epoch=000' a refused resume suggests (78ee3d87)
    was its paths pasted bare: in a run folder named 'my runs/a' the shell split them, and the copied
    command failed on 'my'."""
    import shlex

    argv = [*TINY, "--save_every", "1", "--data.demo_songs", "4", "--data.demo_test_songs", "1",
            "--data.demo_seconds", "6", "--data.cache_dir", str(tmp_path / "cache")]  # fmt: skip
    run = tmp_path / "my runs" / "a"
    assert chords.main([*argv, "--run_dir", str(run)]) == 0
    first = run / "checkpoints" / "epoch=000"
    capsys.readouterr()
    assert chords.main(["--resume", str(first), "--run_dir", str(tmp_path / "b")]) != 0
    err = capsys.readouterr().err
    suggested = err.partition(f"Every setting of its run is in {run / 'config.json'}: ")[2]
    assert shlex.split(suggested.partition(" resumes with them")[0]) == [
        "--config", str(run / "config.json"), "--resume", str(first)
    ]  # fmt: skip
