"""What someone who installs the package meets: the metadata (the MLX it needs, its licence, what the sdist
carries), the commands' first lines (no MLX backend, ``--version``, an ASCII terminal), the one cache folder,
and modules that documentation tools import."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: The first MLX with ``mx.get_memory_limit``, which the recipes' memory check calls (config_cli).
FIRST_MLX_WITH_THE_APIS_USED = (0, 32, 3)


def run(args, cwd, **env):
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            **env,
        },
    )


def test_every_mlx_requirement_names_a_version_the_code_runs_on():
    """``mlx>=0.29`` passed ``pip check`` with mlx 0.29 - 0.32.2, on which every recipe crashed in
    ``mx.get_memory_limit``; the extras named ``mlx[cuda13]``, an extra mlx has only from 0.31."""
    text = (REPO / "pyproject.toml").read_text()
    bounds = re.findall(r'"mlx(\[\w+\])?>=([\d.]+)', text)
    assert {extra for extra, _ in bounds} == {"", "[cpu]", "[cuda12]", "[cuda13]"}
    for extra, version in bounds:
        assert tuple(int(part) for part in version.split(".")) >= FIRST_MLX_WITH_THE_APIS_USED, extra
    import mlx.core as mx

    assert hasattr(mx, "get_memory_limit")


def test_the_mit_licence_is_declared_and_shipped():
    text = (REPO / "pyproject.toml").read_text()
    assert re.search(r'^license = "MIT"$', text, re.M) and 'license-files = ["LICENSE"]' in text
    licence = (REPO / "LICENSE").read_text()
    assert licence.startswith("MIT License") and "Copyright (c) 2026 the audiotrain authors" in licence
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in licence


def test_the_sdist_carries_what_its_tests_need():
    """The sdist held tests/test_*.py (setuptools' default) and nothing they import: 26 collection errors
    for a packager who runs them."""
    file_list = pytest.importorskip("setuptools.command.egg_info").FileList
    every = [
        path.relative_to(REPO).as_posix()
        for path in REPO.rglob("*")
        if path.is_file() and not {".git", ".venv", "__pycache__"} & set(path.relative_to(REPO).parts)
    ]
    files = file_list()
    files.set_allfiles(every)
    for line in (REPO / "MANIFEST.in").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            files.process_template_line(line)
    shipped = set(files.files)
    tests = REPO / "tests"
    needed = {
        "LICENSE",
        "scripts/make_clap_fixture.py",
        "scripts/make_scheduler_fixture.py",
        "benchmarks/chords.py",
    }
    needed |= {p.relative_to(REPO).as_posix() for p in tests.glob("*.py") if not p.name.startswith("test_")}
    needed |= {p.relative_to(REPO).as_posix() for p in (tests / "fixtures").rglob("*") if p.is_file()}
    assert "tests/conftest.py" in needed and "tests/reference.py" in needed
    assert needed <= shipped, sorted(needed - shipped)
    assert not any("__pycache__" in name for name in shipped)
