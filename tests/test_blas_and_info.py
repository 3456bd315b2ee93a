"""`import audiotrain` picks the BLAS before mlx.core; `python -m audiotrain info` reports it."""

import os
import subprocess
import sys

import pytest


def run_python(code: str, **env):
    full_env = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=120
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the BLAS swap is Linux-only")
def test_env_var_off_keeps_the_bundled_blas():
    out = run_python(
        "import audiotrain._blas as b, audiotrain; print(b.STATUS.describe())", AUDIOTRAIN_BLAS="off"
    )
    assert out.returncode == 0, out.stderr
    assert "MLX bundled BLAS (off)" in out.stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the BLAS swap is Linux-only")
def test_a_bad_explicit_library_is_an_error_naming_it():
    out = run_python("import audiotrain", AUDIOTRAIN_BLAS="/nonexistent/libblas.so")
    assert out.returncode != 0
    assert "AUDIOTRAIN_BLAS='/nonexistent/libblas.so' could not be loaded" in out.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the BLAS swap is Linux-only")
def test_importing_mlx_first_warns_clearly():
    out = run_python("import mlx.core\nimport audiotrain", AUDIOTRAIN_BLAS="")
    assert out.returncode == 0, out.stderr
    assert "MLXImportedFirstWarning" in out.stderr and "Import audiotrain first" in out.stderr


def test_info_reports_versions_backend_device_and_blas():
    out = subprocess.run(
        [sys.executable, "-m", "audiotrain", "info"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    for field in ("python", "mlx", "backend", "device", "blas"):
        assert any(line.startswith(field) for line in out.stdout.splitlines()), field


def test_cache_command_has_its_own_help():
    out = subprocess.run(
        [sys.executable, "-m", "audiotrain", "cache", "--help"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and "clear" in out.stdout
