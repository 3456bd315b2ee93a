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
        "speed-up of 2 processes: 2.50x" in out and "caveat: a timed epoch held only 1 optimizer step" in out
    )
    timings = {1: ([108.0, 107.0], [7, 7]), 2: ([66.0, 69.0], [7, 7])}  # the documented run: no caveat
    local_processes.main(["--epochs", "3", "--processes", "2"])
    out = capsys.readouterr().out
    assert "speed-up of 2 processes: 1.62x" in out and "caveat" not in out
