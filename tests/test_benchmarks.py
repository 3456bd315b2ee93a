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
