"""``import audiotrain`` where an installed dependency is outside the range pyproject.toml declares (an
environment built with --no-deps, by conda, or changed by a later pip install): a warning naming each
package, the version found and the one needed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from child_processes import child_env


def import_audiotrain_with_requirements(tmp_path: Path, *requires: str) -> str:
    """stderr of ``python -c "import audiotrain"`` where the audiotrain installed first on sys.path declares
    `requires` (METADATA's Requires-Dist lines, as pip installs them)."""
    site = tmp_path / "site"
    (site / "audiotrain-0.1.0.dist-info").mkdir(parents=True)
    lines = ["Metadata-Version: 2.4", "Name: audiotrain", "Version: 0.1.0"]
    lines += [f"Requires-Dist: {line}" for line in requires]
    (site / "audiotrain-0.1.0.dist-info" / "METADATA").write_text("\n".join(lines) + "\n\nREADME\n")
    env = child_env()
    env["PYTHONPATH"] += os.pathsep + str(site)
    out = subprocess.run(
        [sys.executable, "-c", "import audiotrain"], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return out.stderr


def test_an_older_dependency_than_declared_is_named_with_both_versions_at_import(tmp_path):
    # Before, nothing was said: numpy older than declared failed later, deep inside a feature.
    major = int(np.__version__.split(".")[0])
    stderr = import_audiotrain_with_requirements(
        tmp_path,
        f"numpy>={major + 1}",
        "scipy>=0.1",
        "mlx[cpu]>=0.32.3; sys_platform == 'linux' and extra == 'cpu'",
    )
    assert "DependencyVersionWarning" in stderr
    assert f"numpy {np.__version__} is installed, audiotrain needs numpy>={major + 1}" in stderr
    assert f'pip install "numpy>={major + 1}"' in stderr
    assert "scipy" not in stderr and "mlx" not in stderr  # (in range; an extra's)
    assert stderr.startswith("<string>:1: ")  # (the line that imports audiotrain, not audiotrain's own)


def test_dependencies_in_their_declared_ranges_import_without_a_word(tmp_path):
    major = int(np.__version__.split(".")[0])
    stderr = import_audiotrain_with_requirements(tmp_path, f"numpy>={major}.0,<{major + 1}", "tqdm>=4.60")
    assert stderr == ""


def test_info_names_a_dependency_out_of_its_declared_range(tmp_path):
    # `python -m audiotrain info`, which a bug report quotes, listed versions without saying one was too old.
    major = int(np.__version__.split(".")[0])
    import_audiotrain_with_requirements(tmp_path, f"numpy>={major + 1}")
    env = child_env()
    env["PYTHONPATH"] += os.pathsep + str(tmp_path / "site")
    out = subprocess.run(
        [sys.executable, "-m", "audiotrain", "info"], env=env, capture_output=True, text=True, timeout=300
    )
    assert (
        f"out of range numpy {np.__version__} is installed, audiotrain needs numpy>={major + 1}" in out.stdout
    )
