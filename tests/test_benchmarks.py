"""The scripts in benchmarks/ from the user's side: settings they cannot measure are refused in one line
before any work, and a run that fails says so in its exit status. (The figures themselves are not tests.)"""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def benchmark(name: str):
    """The script ``benchmarks/<name>.py`` as a module (they are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (dataclasses look their module up by name)
    spec.loader.exec_module(module)
    return module


def refused(main, argv, capsys) -> str:
    """The one error line of `main(argv)`, which must stop with argparse's exit status 2."""
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def test_clap_refuses_a_batch_without_negatives(capsys):
    clap = benchmark("clap")
    line = refused(clap.main, ["--batch", "1", "--only", "mlx"], capsys)
    assert "--batch must be 2 or more, got 1" in line and "negatives" in line


def test_clap_exits_non_zero_when_a_framework_run_fails(monkeypatch, capsys):
    clap = benchmark("clap")
    monkeypatch.setattr(clap, "_child", lambda framework, args: None)  # the child failed (and said why)
    assert clap.main(["--only", "mlx", "--steps", "1"]) == 1
    assert "error: the mlx run failed" in capsys.readouterr().err


@pytest.mark.parametrize("batch", ["3", "1"])
def test_data_parallel_refuses_a_batch_the_two_ranks_cannot_share_equally(batch, capsys):
    """An odd batch gave the ranks unequal shares, whose mean of means is not the global mean: a false "NOT
    within 1e-5" that looked like a data-parallel bug; a batch of 1 left rank 1 no rows (a traceback)."""
    data_parallel = benchmark("data_parallel")
    line = refused(data_parallel.main, ["--batch", batch, "--steps", "1"], capsys)
    assert f"--batch must be even and at least 2, got {batch}" in line


def test_local_processes_refuses_one_epoch_before_training(monkeypatch, capsys):
    """With one epoch (not timed) it trained twice and then failed on an empty list of times."""
    local_processes = benchmark("local_processes")
    monkeypatch.setattr(local_processes, "train", lambda *a: pytest.fail("trained"))
    line = refused(local_processes.main, ["--epochs", "1", "--processes", "2"], capsys)
    assert "--epochs must be 2 or more, got 1" in line


def test_local_processes_says_when_its_epochs_are_too_short_to_mean_a_speed_up(monkeypatch, capsys):
    """8 songs gave one optimizer step an epoch and a "2.49x" speed-up of 2 processes on 2 cores."""
    local_processes = benchmark("local_processes")
    timings = {1: ([442.0], [1]), 2: ([177.0], [1])}
    monkeypatch.setattr(local_processes, "train", lambda processes, args, root: timings[processes])
    local_processes.main(["--songs", "8", "--epochs", "2", "--processes", "2"])
    out = capsys.readouterr().out
    assert (
        "speed-up of 2 processes: 2.50x" in out
        and "caveat: a timed epoch held only 1 optimizer step, so" in out
    )
    timings = {1: ([108.0, 107.0], [7, 7]), 2: ([66.0, 69.0], [7, 7])}  # the documented run: no caveat
    local_processes.main(["--epochs", "3", "--processes", "2"])
    out = capsys.readouterr().out
    assert "speed-up of 2 processes: 1.62x" in out and "caveat" not in out


@pytest.fixture(scope="module")
def chord_checkpoint(tmp_path_factory):
    from test_recipe_chords_evaluate import _tiny_checkpoint

    return _tiny_checkpoint(tmp_path_factory.mktemp("bench_ckpt") / "ckpt", seed=0)


def chords_argv(checkpoint, tmp_path, *more) -> list[str]:
    return [
        "--checkpoint", str(checkpoint), "--test_songs", "1", "--band_songs", "0", "--errors", "0",
        "--tta", "0", "--set", "data.demo_seconds=8", "--cache_dir", str(tmp_path / "cache"),
        "--run_dir", str(tmp_path / "run"), *more,
    ]  # fmt: skip


def test_chords_scores_a_checkpoint_on_the_held_out_songs_alone_and_keeps_an_earlier_evaluation(
    chord_checkpoint, tmp_path, capsys
):
    """--checkpoint rendered every training demo song (1,024 by default) that it never scores, and wrote
    over an earlier evaluation in --run_dir without a word; the baseline's speed carried librosa's JIT."""
    chords = benchmark("chords")
    chords.main(chords_argv(chord_checkpoint, tmp_path))
    out = capsys.readouterr().out
    assert "held-out songs, independent style: 1 song, " in out  # was "1 songs"
    assert "(baseline: " in out and "its one-off JIT compile excluded" in out
    rendered = [folder.name for folder in (tmp_path / "cache" / "demo" / "chords").iterdir()]
    assert rendered and all(name.startswith("test-") for name in rendered)
    scores = tmp_path / "run" / "evaluation" / "train_style" / "scores.json"
    first = scores.read_bytes()
    (scores.parent / "song_999.lab").write_text("0.0\t1.0\tN\n")  # a file of the user's own stays

    with pytest.raises(SystemExit) as stop:
        chords.main(chords_argv(chord_checkpoint, tmp_path, "--tta", "1"))
    assert "already holds an evaluation" in str(stop.value.code) and "--overwrite" in str(stop.value.code)
    assert scores.read_bytes() == first
    chords.main(chords_argv(chord_checkpoint, tmp_path, "--tta", "1", "--overwrite"))
    assert scores.read_bytes() != first and (scores.parent / "song_999.lab").is_file()


def test_chords_refuses_a_missing_checkpoint_before_rendering_anything(tmp_path, capsys):
    chords = benchmark("chords")
    with pytest.raises(SystemExit) as stop:
        chords.main(chords_argv(tmp_path / "no_such_ckpt", tmp_path))
    assert str(stop.value.code).startswith(f"error: --checkpoint {tmp_path / 'no_such_ckpt'}: ")
    assert "\n" not in str(stop.value.code) and not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--tta", "-1"], "--tta must be 0 semitones (off) or more, got -1"),  # was TTA off, silently
        (["--test_songs", "-1"], "--test_songs -1: demo_test_songs must be an integer >= 1"),
        (["--independent_songs", "0"], "--independent_songs 0: demo_test_songs must be an integer >= 1"),
        (["--overwrite", "--quick"], "--overwrite replaces an earlier evaluation of a --checkpoint"),
    ],
)
def test_chords_refuses_flag_values_out_of_range_in_one_line(flags, message, tmp_path, capsys):
    chords = benchmark("chords")
    argv = [*flags, "--cache_dir", str(tmp_path / "cache"), "--run_dir", str(tmp_path / "run")]
    if "--overwrite" not in flags:  # refused before the checkpoint is looked for
        argv += ["--checkpoint", str(tmp_path / "no_such_ckpt"), "--demo_songs", "2"]
        argv += ["--set", "data.demo_seconds=8"]
    assert message in refused(chords.main, argv, capsys)
    assert not (tmp_path / "cache").exists()


def test_chords_refuses_tta_beyond_the_checkpoints_reach(chord_checkpoint, tmp_path):
    chords = benchmark("chords")
    with pytest.raises(SystemExit) as stop:
        chords.main(chords_argv(chord_checkpoint, tmp_path, "--tta", "7"))
    assert "--tta 7: " in str(stop.value.code) and "use --tta 6 or less" in str(stop.value.code)
    assert not (tmp_path / "cache").exists()


def test_weight_averaging_refuses_no_steps_before_training(monkeypatch, capsys):
    weight_averaging = benchmark("weight_averaging")
    monkeypatch.setattr(weight_averaging, "seconds_per_step", lambda *a: pytest.fail("trained"))
    line = refused(weight_averaging.main, ["--steps", "0"], capsys)
    assert "--steps must be 1 or more, got 0" in line


def test_chords_scores_the_yardsticks_songs_and_the_rest_of_a_longer_set_apart():
    """The rounds give the independent style's figures on its first 16 songs and on the next 48 apart; the
    script pooled all 64, and each round re-scored its songs by hand to split them."""
    from types import SimpleNamespace

    from audiotrain.chords.lab import ChordSegment
    from audiotrain.metrics.chord_scores import score_songs

    chords = benchmark("chords")
    songs = [SimpleNamespace(name=f"song_{i:03d}") for i in range(20)]
    reference = [ChordSegment(0.0, 2.0, "C:maj"), ChordSegment(2.0, 4.0, "A:min/b3")]
    right, wrong = reference, [ChordSegment(0.0, 4.0, "C:maj")]
    pairs = {song.name: (reference, right if i < 16 else wrong) for i, song in enumerate(songs)}
    split = chords.yardstick_and_rest(pairs, songs)
    assert list(split) == ["model, first 16", "model, next 4"]
    assert split["model, first 16"].pooled["majmin"] == 1.0
    assert split["model, next 4"].pooled["majmin"] == pytest.approx(0.5)
    assert split["model, next 4"].pooled == score_songs({n: pairs[n] for n in list(pairs)[16:]}).pooled


@pytest.mark.parametrize("flag", ["--steps", "--batch-size", "--repeats", "--hidden", "--d-in"])
def test_trainer_overhead_refuses_a_setting_below_one_before_training(flag, monkeypatch, capsys):
    trainer_overhead = benchmark("trainer_overhead")
    monkeypatch.setattr(trainer_overhead, "hand_written", lambda *a: pytest.fail("trained"))
    monkeypatch.setattr(trainer_overhead, "with_trainer", lambda *a, **k: pytest.fail("trained"))
    line = refused(trainer_overhead.main, [flag, "0"], capsys)
    assert f"{flag} must be 1 or more, got 0" in line


def test_trainer_overhead_measures_the_mlp_asked_for_without_a_summary_table_per_fit(monkeypatch, capsys):
    trainer_overhead = benchmark("trainer_overhead")
    monkeypatch.setattr(trainer_overhead, "bundled_gflops", lambda: 1.0)  # (a subprocess: not tested here)
    monkeypatch.setattr(trainer_overhead, "matmul_gflops", lambda: 1.0)
    trainer_overhead.main(
        ["--steps", "2", "--repeats", "1", "--batch-size", "4", "--hidden", "8", "--d-in", "6"]
    )
    out = capsys.readouterr().out
    assert "model: MLP 6-8-8-10, batch 4" in out
    assert "target (the default 256-1024-1024 MLP): ratio >= 0.97" in out  # (not a target for this one)
    assert (
        "Trainable params" not in out
    )  # (a model summary for each of the 2 × repeats fits buried the table)


def test_batch_weight_sync_prints_its_results_without_a_summary_table_per_fit(monkeypatch, capsys):
    batch_weight_sync = benchmark("batch_weight_sync")
    argv = ["batch_weight_sync.py", "--steps", "3", "--repeats", "1", "--host_ms", "0"]
    monkeypatch.setattr(sys, "argv", argv)
    batch_weight_sync.main()
    out, err = capsys.readouterr()
    assert "host work 0 ms/batch: weight on the device" in out
    # (a model summary on stderr for each of its fits, 2 + 2 x repeats x host_ms of them, buried the results)
    assert "Trainable params" not in err + out


def test_startup_names_a_recipes_training_module_as_heavy_not_the_recipes_package():
    """`benchmarks/startup.py` named "audiotrain.recipes.chords" a heavy import of every chords command, the
    light package that `python -m audiotrain.recipes.chords` imports by itself (`chords --help`: "mlx,
    audiotrain.recipes.chords"), and so could not tell a --help that imported the training module from one
    that did not."""
    heavy_imports = benchmark("startup").heavy_imports
    assert "audiotrain.recipes.chords" not in heavy_imports(
        [sys.executable, "-m", "audiotrain.recipes.chords", "--help"]
    )
    training = heavy_imports([sys.executable, "-c", "import audiotrain.recipes.chords.train"])
    assert "audiotrain.recipes.chords.train" in training and "audiotrain.train.trainer" in training
