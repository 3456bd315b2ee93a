"""Both recipes under data parallel (2 ranks, ring on loopback): one run folder written by rank 0, and the
chord recipe trains as one process over the combined batch."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from built_once import built_once
from distributed import child_env, describe, run_ranks

CHORDS = [
    "--data.demo_songs", "4", "--data.demo_test_songs", "1", "--data.demo_seconds", "8",
    "--data.window_frames", "32", "--num_epochs", "2", "--model.d_model", "32", "--model.n_layers", "1",
    "--model.n_heads", "2", "--model.ff_dim", "64", "--progress_bar", "false", "--data.pitch_shift", "false",
    "--model.dropout", "0", "--processes", "1",
]  # fmt: skip


def _launch(module: str, args: list[str], tmp_path):
    code = f"import sys, runpy\nsys.argv = ['{module}', *sys.argv[1:]]\nrunpy.run_module('{module}', run_name='__main__')\n"
    results = run_ranks(code, 2, args=args, timeout=300, cwd=tmp_path)
    assert all(r.returncode == 0 for r in results), describe(results)
    return results


#: The chord recipe's command line (argv[2:]), each rank appending "FUNCTION RANK" to the file argv[1] as it
#: scores the held-out songs or reports the scores to the loggers.
SCORED_BY_RANK = """
import os, sys
from audiotrain.recipes.chords import cli, train
scored_by = sys.argv[1]
def noting(name):
    function = getattr(train, name)
    def noted(*args, **kwargs):
        with open(scored_by, "a") as file:
            file.write(f"{name} {os.environ['MLX_RANK']}\\n")
        return function(*args, **kwargs)
    setattr(train, name, noted)
for name in ("_evaluate_held_out", "_report_to_loggers"):
    noting(name)
sys.exit(cli.main(sys.argv[2:]))
"""


@pytest.fixture(scope="module")
def chord_runs(tmp_path_factory):
    """The tiny chord job of 2 epochs trained in this process over a batch of 8 ("one") and on 2 ranks of 4
    ("two", with the ranks' results), on one cache: read by the tests below; a test that changes a run
    works on a shutil.copytree of it. Built once per test run (`built_once`), whatever the workers."""
    from audiotrain.recipes.chords import cli as chords

    def build(tmp_path):
        cache = ["--data.cache_dir", str(tmp_path / "cache")]
        with pytest.MonkeyPatch.context() as patch:  # (module scope: conftest's function fixture comes later)
            patch.setenv("AUDIOTRAIN_PLOTS", "0")
            # The one process is this one (a child's start-up would prove nothing more).
            one = ["--batch_size", "8", "--run_dir", str(tmp_path / "one")]
            assert chords.main([*CHORDS, *cache, *one]) == 0
            two = ["--batch_size", "4", "--run_dir", "two"]
            return cache, _launch("audiotrain.recipes.chords", [*CHORDS, *cache, *two], tmp_path)

    tmp_path, (cache, ranks) = built_once(tmp_path_factory, "chord_runs", build)
    return tmp_path, cache, ranks


@pytest.mark.slow
def test_chord_training_on_two_ranks_equals_one_process_over_the_combined_batch(chord_runs):
    tmp_path, _, ranks = chord_runs
    assert "held-out songs" in ranks[0].stdout and ranks[1].stdout.strip() == ""  # rank 0 speaks for the job
    said = ranks[0].stdout + ranks[0].stderr
    assert "(1 step of 8: 2 processes x 4)" in said, said  # (--batch_size is per rank)
    a = json.loads((tmp_path / "one" / "history.json").read_text())
    b = json.loads((tmp_path / "two" / "history.json").read_text())
    # The same windows and one loss over both ranks' frames: the training losses agree to float32 rounding
    # (the weights to Adam's amplification of that rounding on near-zero gradients).
    np.testing.assert_allclose(b["train_loss"], a["train_loss"], rtol=1e-5)
    # Validation over unequal shares of the windows (the ranks' frames differ): the same means too.
    for name in ("val_loss", "val_root_loss", "val_bass_note_loss", "val_root_acc", "val_bass_note_acc"):
        np.testing.assert_allclose(b[name], a[name], rtol=1e-4, err_msg=name)
    assert (tmp_path / "two" / "checkpoints" / "best").is_dir() and (tmp_path / "two" / "evaluation").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("one", "two", "runs"))) == [
        "one",
        "two",
    ]


@pytest.mark.slow
def test_a_two_rank_run_on_a_data_folder_resumes_on_its_own_songs_after_one_is_added(tmp_path):
    """Both ranks take the resumed run's songs from its record (read before rank 0 rewrites it), not the
    folder as it is now: the resumed job trains as the uninterrupted one did."""
    from audiotrain.datasets.chord_demo import generate_demo_songs

    data = tmp_path / "songs"
    generate_demo_songs(data, n_songs=4, seed=9, song_seconds=6)
    flags = ["train", "--data", str(data), *CHORDS, "--data.cache_dir", str(tmp_path / "cache")]
    flags += ["--batch_size", "2", "--save_every", "0"]
    # (1 epoch, then 1 more on resume: the claim holds for any number)
    _launch("audiotrain.recipes.chords", [*flags, "--run_dir", "run", "--num_epochs", "1"], tmp_path)
    _launch("audiotrain.recipes.chords", [*flags, "--run_dir", "straight"], tmp_path)
    for suffix in (".wav", ".lab"):
        (data / f"added{suffix}").write_bytes((data / f"song_001{suffix}").read_bytes())
    last = str(tmp_path / "run" / "checkpoints" / "last")
    resume = [*flags, "--run_dir", str(tmp_path / "run"), "--resume", last]
    ranks = _launch("audiotrain.recipes.chords", resume, tmp_path)
    assert "1 song added to" in ranks[0].stderr, ranks[0].stderr[-3000:]
    a, b = (json.loads((tmp_path / run / "history.json").read_text()) for run in ("run", "straight"))
    assert a["epoch"] == [0, 1] and a["train_loss"] == b["train_loss"] and a["val_loss"] == b["val_loss"]


@pytest.fixture(scope="module")
def clap_two_rank_run(tmp_path_factory):
    """The tiny CLAP demo fine-tuned on 2 ranks (run folder "run") and the ranks' results: read by the tests
    below. Built once per test run (`built_once`), whatever the workers."""
    return built_once(tmp_path_factory, "clap_two_rank_run", _clap_two_rank_run)


def _clap_two_rank_run(tmp_path):
    # 12 clips leave 3 for evaluation: shards of 2 and 1, which the contrastive loss's gather must survive.
    args = ["--demo.folder", str(tmp_path / "cache"), "--demo.clips", "12", "--demo.width", "16",
            "--demo.vocab_size", "120", "--dataset.max_tokens", "16", "--dataset.num_workers", "0",
            "--train.epochs", "1", "--train.batch_size", "2", "--train.compile", "false",
            "--train.progress_bar", "false", "--out", "run"]  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:  # (module scope: conftest's function fixture comes later)
        patch.setenv("AUDIOTRAIN_PLOTS", "0")
        return _launch("audiotrain.recipes.clap", args, tmp_path)


@pytest.mark.slow
def test_clap_fine_tuning_runs_on_two_ranks_with_one_run_folder(clap_two_rank_run):
    tmp_path, ranks = clap_two_rank_run
    assert "exported Hugging Face model" in ranks[0].stdout and ranks[1].stdout.strip() == ""
    # (its diagnostics too, on stderr: rank 1 printed the banner, the data report and the notes again)
    assert "OFFLINE DEMO" in ranks[0].stderr and "demo data: " in ranks[0].stderr
    assert "OFFLINE DEMO" not in ranks[1].stderr and "demo data: " not in ranks[1].stderr, ranks[1].stderr
    # Each rank's shard of the 9 training clips is 4: 2 steps of 2, as one process's 9 // 4 (the schedule too).
    assert "; 2 optimizer steps planned" in ranks[0].stderr  # (a diagnostic)
    assert (tmp_path / "run" / "hf_model" / "config.json").is_file()
    assert not list(tmp_path.glob("audiotrain-rank-*"))


def test_clap_contrastive_training_on_two_ranks_equals_one_process_over_the_combined_batch(tmp_path):
    """Every rank's pairs are negatives of every other's (gather_for_loss), so 2 ranks of 4 train as one
    process of 8. Plain SGD: Adam's normalised step would amplify float32 rounding on near-zero gradients."""
    job = Path(__file__).resolve().parent / "dp_clap_job.py"
    one = subprocess.run(
        [sys.executable, str(job), "8", "one", "sgd"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert one.returncode == 0, one.stderr[-3000:]
    results = run_ranks(job, 2, args=["4", "two", "sgd"], timeout=120, cwd=tmp_path)
    assert all(r.returncode == 0 for r in results), describe(results)
    a, r0, r1 = (np.load(tmp_path / f"{name}.npz") for name in ("one-rank0", "two-rank0", "two-rank1"))
    np.testing.assert_allclose(r0["loss"], a["loss"], rtol=1e-6)
    for k in (k for k in a.files if k.startswith("w.")):
        np.testing.assert_array_equal(r0[k], r1[k], err_msg=k)
        np.testing.assert_allclose(r0[k], a[k], atol=1e-5, err_msg=k)


def _five_tones_and_a_model_without_dropout(tmp_path) -> list[str]:
    """5 captioned tones in split 'train' and the tiny CLAP checkpoint with its dropout off: the recipe's
    flags to train on them and evaluate on the same clips."""
    import soundfile as sf
    from clap_folders import tiny_checkpoint

    checkpoint = tiny_checkpoint(tmp_path)
    config = (checkpoint / "config.json").read_text()
    (checkpoint / "config.json").write_text(config.replace('_dropout_prob": 0.1', '_dropout_prob": 0.0'))
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(2)
    rows = ["file_name,caption,split"]
    for i, caption in enumerate(
        ["a low hum", "a high beep", "a middle tone", "a very high whistle", "noise"]
    ):
        t = np.arange(int(16000 * (0.5 + 0.25 * i))) / 16000
        tone = 0.3 * np.sin(2 * np.pi * 110 * 1.6**i * t) + 0.03 * rng.normal(size=t.size)
        sf.write(data / f"c{i}.wav", tone.astype(np.float32), 16000)
        rows.append(f"c{i}.wav,{caption},train")
    (data / "metadata.csv").write_text("\n".join(rows) + "\n")
    return ["--data", str(data), "--pretrained", str(checkpoint), "--dataset.eval_split", "train",
            "--train.epochs", "1", "--train.batch_size", "8", "--train.eval_batch_size", "8",
            "--task.learning_rate", "1e-3", "--dataset.num_workers", "0",
            "--train.progress_bar", "false"]  # fmt: skip


@pytest.mark.slow
def test_clap_with_fewer_clips_than_the_jobs_batch_trains_on_two_ranks_as_one_process(tmp_path):
    """5 clips and a batch of 8: each rank's shard of 3 is padded with a repeat of a clip, which the gathered
    contrastive batch scored as its original's negative: the loss was over 6 rows (about ln 6 at the start,
    not ln 5), in training and in validation, and differed from one process's from the first step."""
    flags = _five_tones_and_a_model_without_dropout(tmp_path)
    one = subprocess.run(
        [sys.executable, "-m", "audiotrain.recipes.clap", *flags, "--train.processes", "1", "--out", "one"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=child_env(),
    )  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]
    _launch("audiotrain.recipes.clap", [*flags, "--out", "two"], tmp_path)
    a = json.loads((tmp_path / "one" / "history.json").read_text())
    b = json.loads((tmp_path / "two" / "history.json").read_text())
    for name in ("train_loss", "val_loss", "val_audio_accuracy", "val_text_accuracy"):
        np.testing.assert_allclose(b[name], a[name], rtol=1e-6, err_msg=name)


@pytest.mark.slow
def test_chord_cv_on_two_ranks_trains_each_fold_together_and_rank_0_scores_them(tmp_path):
    """Rank 1 read the fold's evaluation, which rank 0 alone makes: it crashed after the first fold."""
    flags = ["cv", "--folds", "2", *CHORDS, "--num_epochs", "1", "--batch_size", "2", "--run_dir", "cv"]
    ranks = _launch(
        "audiotrain.recipes.chords", [*flags, "--data.cache_dir", str(tmp_path / "cache")], tmp_path
    )
    assert ranks[1].stdout.strip() == "", ranks[1].stdout  # rank 0 speaks for the job
    assert ranks[0].stdout.count("=== fold 1 (2 of 2)") == 1 and "2-fold cross-validation" in ranks[0].stdout
    scores = json.loads((tmp_path / "cv" / "cv_scores.json").read_text())
    assert len(scores["folds"]) == 2, scores
    assert all((tmp_path / "cv" / f"fold{k}" / "evaluation").is_dir() for k in (0, 1))


@pytest.mark.slow
def test_a_two_rank_run_whose_held_out_evaluation_was_cut_short_has_rank_0_alone_finish_it(
    chord_runs, tmp_path
):
    """The resume that scores the test songs of a run whose training ended and whose evaluation a stop or
    a kill cut short (`evaluate_trained_run`) joins every rank for the songs, then rank 0 alone writes
    evaluation/, the loggers' test scores and the report: rank 1 writing them too would race it."""
    runs, cache, _ = chord_runs
    flags = [*CHORDS, "--batch_size", "4", *cache]
    run_dir = tmp_path / "run"
    shutil.copytree(runs / "two", run_dir)  # (the 2-rank run of 2 epochs)
    shutil.rmtree(run_dir / "evaluation")  # (as a kill as the evaluation began leaves it)
    resume = [*flags, "--run_dir", str(run_dir), "--resume", str(run_dir / "checkpoints" / "last")]
    ranks = run_ranks(
        SCORED_BY_RANK, 2, args=[str(tmp_path / "scored-by"), *resume], timeout=300, cwd=tmp_path
    )
    assert all(r.returncode == 0 for r in ranks), describe(ranks)
    assert "its training ended earlier; its held-out songs are scored now" in ranks[0].stderr, describe(ranks)
    assert "trained 2 epochs" not in ranks[0].stderr  # (nothing was trained again)
    assert "held-out songs" in ranks[0].stdout and ranks[1].stdout.strip() == "", ranks[1].stdout
    assert (tmp_path / "scored-by").read_text() == "_evaluate_held_out 0\n_report_to_loggers 0\n"
    assert (run_dir / "evaluation" / "scores.json").is_file()


@pytest.mark.slow
def test_predict_and_evaluate_under_a_launcher_run_on_rank_0_alone(chord_runs, tmp_path):
    """Each rank did all the work into the same folder: the job failed on the race (files that "appeared")."""
    from audiotrain.datasets.chord_demo import generate_demo_songs

    songs = tmp_path / "songs"
    generate_demo_songs(songs, n_songs=2, seed=3, song_seconds=4)
    # (the checkpoint to predict with was trained in this process: a child's start-up proved nothing here)
    checkpoint = str(chord_runs[0] / "one" / "checkpoints" / "last")
    for command, output in (
        ("predict", ["songs", "-o", "labs"]),
        ("evaluate", ["--data", "songs", "-o", "ev"]),
    ):
        ranks = _launch("audiotrain.recipes.chords", [command, "--checkpoint", checkpoint, *output], tmp_path)
        assert ranks[1].stdout == ranks[1].stderr == ""  # it ended at once
        assert f"{command} runs in one process: rank 0 of the launcher's 2 does all of it" in ranks[0].stderr
        assert "appeared" not in ranks[0].stderr, ranks[0].stderr
    assert sorted(p.name for p in (tmp_path / "labs").iterdir()) == ["song_000.lab", "song_001.lab"]
    assert (tmp_path / "ev" / "scores.json").is_file()


@pytest.mark.slow
def test_clap_export_under_a_launcher_runs_on_rank_0_alone(clap_two_rank_run, tmp_path):
    """Each rank exported into the same --out: the job failed at random ("already holds files")."""
    run = clap_two_rank_run[0] / "run"
    checkpoint = str(run / "checkpoints" / "last")
    ranks = _launch(
        "audiotrain.recipes.clap", ["export", "--checkpoint", checkpoint, "--out", "ex"], tmp_path
    )
    assert ranks[1].stdout == ranks[1].stderr == ""  # it ended at once
    assert "export runs in one process: rank 0 of the launcher's 2 does all of it" in ranks[0].stderr
    assert ranks[0].stdout.count("exported ") == 1, ranks[0].stdout
    assert (tmp_path / "ex" / "config.json").is_file()
    # evaluate too: each rank scored the same clips and wrote the same --out file.
    data = json.loads((run / "config.json").read_text())["data_folder"]
    ranks = _launch(
        "audiotrain.recipes.clap",
        ["evaluate", "--model", "ex", "--data", data, "--out", "scores.json"],
        tmp_path,
    )
    assert ranks[1].stdout == ranks[1].stderr == ""
    assert "evaluate runs in one process: rank 0 of the launcher's 2 does all of it" in ranks[0].stderr
    assert ranks[0].stdout.count("scores written to ") == 1, ranks[0].stdout
    assert json.loads((tmp_path / "scores.json").read_text())["n_clips"] == 12  # (the run's demo clips)


@pytest.mark.slow
def test_clap_cv_on_two_ranks_trains_folds_with_fewer_clips_than_the_jobs_batch(tmp_path):
    """A fold of 3 training clips under 2 ranks of 2 (a job batch of 4): each rank's shard was judged on its
    own batch, too short for one, and the fold trained no step; its header came from both ranks."""
    args = ["cv", "--folds", "2", "--demo.folder", str(tmp_path / "cache"), "--demo.clips", "8",
            "--demo.width", "16", "--demo.vocab_size", "120", "--dataset.max_tokens", "16",
            "--dataset.num_workers", "0", "--train.epochs", "1", "--train.batch_size", "2",
            "--train.compile", "false", "--train.progress_bar", "false", "--out", "cv"]  # fmt: skip
    ranks = _launch("audiotrain.recipes.clap", args, tmp_path)
    assert ranks[1].stdout.strip() == "", ranks[1].stdout  # rank 0 speaks for the job
    assert "training on 3 clips" not in ranks[1].stderr, ranks[1].stderr  # (on stderr too)
    assert ranks[0].stdout.count("=== fold 0 (1 of 2)") == 1, ranks[0].stdout
    assert "training on 3 clips" in ranks[0].stderr, ranks[0].stderr  # (a fold this test is about)
    assert "yields no batches" not in ranks[0].stderr, ranks[0].stderr[-3000:]
    for k in (0, 1):
        history = json.loads((tmp_path / "cv" / f"fold{k}" / "history.json").read_text())
        assert len(history.get("train_loss", [])) == 1, (k, history)


# 2-rank jobs and signal timing: with -n, no other test runs beside these (tests/conftest.py).
pytestmark = pytest.mark.serial


@pytest.mark.slow
def test_clap_validation_note_on_two_ranks_counts_the_clips_of_the_jobs_batch(tmp_path):
    """12 evaluation clips, --train.eval_batch_size 4 per rank on 2 ranks: val_loss scores whole batches of
    the job's 8 clips, so 8 of the 12. The note judged one rank's batch of 4 (12 fill three) and said
    nothing; with 10 clips and a batch of 8 it said "8 of the 10" where val_loss scored all 10 (the job's
    batch is 16)."""
    import soundfile as sf
    from clap_folders import tiny_checkpoint

    checkpoint = tiny_checkpoint(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    t = np.arange(16000) / 16000
    rows = ["file_name,caption,split"]
    for i in range(16):
        sf.write(data / f"c{i}.wav", (0.3 * np.sin(2 * np.pi * (150 + 60 * i) * t)).astype(np.float32), 16000)
        rows.append(f"c{i}.wav,tone number {i},{'train' if i < 4 else 'test'}")
    (data / "metadata.csv").write_text("\n".join(rows) + "\n")
    args = ["--data", str(data), "--pretrained", str(checkpoint), "--train.epochs", "1",
            "--train.batch_size", "2", "--train.eval_batch_size", "4", "--dataset.num_workers", "0",
            "--train.progress_bar", "false", "--train.compile", "false", "--out", "run"]  # fmt: skip
    ranks = _launch("audiotrain.recipes.clap", args, tmp_path)
    assert "val_loss and val accuracies use 8 of the 12 evaluation clips" in ranks[0].stderr, ranks[0].stderr
