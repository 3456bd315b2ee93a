"""What someone who installs the package meets: the metadata (the MLX it needs, its licence, what the sdist
carries), the commands' first lines (no MLX backend, ``--version``, an ASCII terminal), the one cache folder,
and modules that documentation tools import."""

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
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


@pytest.fixture(scope="module")
def helps(tmp_path_factory):
    """``helps("audiotrain", "chords", "--help")``: `python -m` of those arguments, run once for the module
    in one empty folder (`helps.folder`), as several tests read the same help (a process each: seconds of
    CPU on a loaded machine)."""
    folder = tmp_path_factory.mktemp("helps")
    done = {}

    def helps(*args: str) -> subprocess.CompletedProcess:
        if args not in done:
            done[args] = run(["-m", *args], folder)
        return done[args]

    helps.folder = folder
    return helps


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


def test_the_tokenizers_requirement_leaves_out_1_0():
    """tokenizers 1.0 (1.0.0rc3) reworked its Python bindings: no trainers or decoders, no
    Tokenizer.from_str, and every CLAP path failed; nothing stopped pip from picking it."""
    (requirement,) = re.findall(r'"(tokenizers[^"]*)"', (REPO / "pyproject.toml").read_text())
    assert requirement.replace(" ", "") == "tokenizers>=0.20,<1"


def test_the_mit_licence_is_declared_and_shipped():
    text = (REPO / "pyproject.toml").read_text()
    assert re.search(r'^license = "MIT"$', text, re.M) and 'license-files = ["LICENSE"]' in text
    licence = (REPO / "LICENSE").read_text()
    assert licence.startswith("MIT License") and "Copyright (c) 2026 the audiotrain authors" in licence
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in licence


def test_the_package_metadata_and_the_module_name_one_version():
    """The version is written twice (pyproject.toml, ``audiotrain.__version__``): a bump to one alone made
    ``audiotrain --version`` disagree with what pip installed."""
    import audiotrain

    (version,) = re.findall(r'^version = "([^"]+)"$', (REPO / "pyproject.toml").read_text(), re.M)
    assert audiotrain.__version__ == version


def test_the_readme_lists_every_benchmark():
    """benchmarks/weight_averaging.py ships in the sdist and runs, but the README's Benchmarks list left it
    out."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("\n## Benchmarks\n", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^python (benchmarks/\w+\.py) +# \S", section, re.M))
    assert listed == {f"benchmarks/{path.name}" for path in (REPO / "benchmarks").glob("*.py")}


def test_a_stuck_test_fails_with_its_stacks_instead_of_holding_the_run(pytestconfig):
    """A CI run (`-n auto`) stopped progressing at 77% for 10 minutes: a test that waits for ever (a pipe, a
    subprocess, MLX's eval) held its worker with no word, faulthandler's dump due only after 20 minutes.
    pytest-timeout (a dev dependency) is given a limit and a method that works while C code waits."""
    assert 0 < float(pytestconfig.getini("timeout")) <= 900
    assert pytestconfig.getini("timeout_method") == "thread"


def test_the_sdist_carries_what_its_tests_need(monkeypatch):
    """The sdist held tests/test_*.py (setuptools' default) and nothing they import: 26 collection errors
    for a packager who runs them."""
    file_list = pytest.importorskip("setuptools.command.egg_info").FileList
    # MANIFEST.in's lines are read against the current folder, as setuptools reads them: pytest started
    # from another folder found nothing to ship.
    monkeypatch.chdir(REPO)
    # (os.walk leaves those folders unread: rglob read all of .venv, where CI installs torch and the rest,
    # before it dropped its files: the test's 31 s in a loaded CI-like run, 0.7 s now)
    left_out = {".git", ".venv", "__pycache__"}
    every = []
    for folder, subfolders, names in os.walk(REPO):
        subfolders[:] = [name for name in subfolders if name not in left_out]
        paths = [Path(folder) / name for name in names if name not in left_out]  # (a worktree's .git file)
        every += [path.relative_to(REPO).as_posix() for path in paths if path.is_file()]
    files = file_list()
    files.set_allfiles(every)
    for line in (REPO / "MANIFEST.in").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            files.process_template_line(line)
    shipped = set(files.files)
    tests = REPO / "tests"
    needed = {
        "LICENSE",
        # read by test_build_version.py and the source_tree fixture: 3 tests failed from the sdist without
        ".gitattributes",
        ".git_archival.txt",
        ".gitignore",
        "scripts/make_clap_fixture.py",
        "scripts/make_scheduler_fixture.py",
        "benchmarks/chords.py",
    }
    needed |= {p.relative_to(REPO).as_posix() for p in tests.glob("*.py") if not p.name.startswith("test_")}
    needed |= {p.relative_to(REPO).as_posix() for p in (tests / "fixtures").rglob("*") if p.is_file()}
    assert "tests/conftest.py" in needed and "tests/reference.py" in needed
    assert needed <= shipped, sorted(needed - shipped)
    assert not any("__pycache__" in name for name in shipped)


def _build(kind: str, tree: Path, outdir: Path) -> Path:
    """A wheel or sdist of `tree` from the backend pyproject.toml names, as pip and `python -m build` call
    it (without their isolated environment: no download)."""
    code = f"from setuptools import build_meta\nprint(build_meta.build_{kind}({str(outdir)!r}))"
    done = subprocess.run([sys.executable, "-c", code], cwd=tree, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return outdir / done.stdout.strip().splitlines()[-1]


@pytest.fixture
def source_tree(tmp_path):
    """A git repository holding what a build reads from this checkout, and a function that commits it."""
    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip(f"the build needs setuptools>=77 (the dev extra), not {setuptools.__version__}")
    if shutil.which("git") is None:
        pytest.skip("no git to make a repository with")
    tree = tmp_path / "src"
    tree.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md", "LICENSE", "MANIFEST.in", ".gitignore"):
        if (REPO / name).is_file():
            shutil.copy(REPO / name, tree / name)
    shutil.copytree(REPO / "audiotrain", tree / "audiotrain", ignore=shutil.ignore_patterns("__pycache__"))

    def git(*args: str) -> str:
        command = ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args]
        return subprocess.run(command, cwd=tree, capture_output=True, text=True, check=True).stdout.strip()

    def commit() -> str:
        git("add", "-A")
        git("commit", "-q", "-m", "a commit")
        return git("rev-parse", "HEAD")

    git("init", "-q")
    return tree, commit


def _installed_version(wheel: Path, folder: Path) -> str:
    """`python -m audiotrain --version` of `wheel` unpacked (as pip installs it), run from another folder."""
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(folder / "site")
    (folder / "cwd").mkdir()
    done = run(["-m", "audiotrain", "--version"], folder / "cwd", PYTHONPATH=str(folder / "site"))
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.slow
def test_a_wheel_reports_the_commit_it_was_built_from_and_ships_only_the_tree(source_tree, tmp_path):
    """A wheel said plain "0.1.0" for any commit, clean or modified (the README promised 0.1.0+g<commit>),
    and a module deleted from the tree was shipped from the copy an earlier build left in build/lib."""
    tree, commit = source_tree
    (tree / "audiotrain" / "zz_removed.py").write_text("X = 1\n")
    commit()
    assert "audiotrain/zz_removed.py" in zipfile.ZipFile(_build("wheel", tree, tmp_path / "d1")).namelist()
    (tree / "audiotrain" / "zz_removed.py").unlink()
    clean = commit()
    wheel = _build("wheel", tree, tmp_path / "d2")
    assert "audiotrain/zz_removed.py" not in zipfile.ZipFile(wheel).namelist()
    assert _installed_version(wheel, tmp_path / "clean") == f"python -m audiotrain 0.1.0+g{clean[:12]}"
    with open(tree / "audiotrain" / "__init__.py", "a") as init:
        init.write("# a change not committed\n")
    dirty = _build("wheel", tree, tmp_path / "d3")
    assert _installed_version(dirty, tmp_path / "dirty") == f"python -m audiotrain 0.1.0+g{clean[:12]}.dirty"
    assert dirty.name == wheel.name == "audiotrain-0.1.0-py3-none-any.whl"  # an index refuses +g... versions
    metadata = zipfile.ZipFile(wheel).read("audiotrain-0.1.0.dist-info/METADATA").decode()
    assert "Author: the audiotrain authors" in metadata  # (the PyPI page had no author, no classifier)
    assert "Classifier: Programming Language :: Python :: 3.10" in metadata
    assert '"dist/audiotrain-0.1.0-py3-none-any.whl[cpu]"' in metadata  # not only -e installs


@pytest.mark.slow
def test_a_wheel_built_from_the_sdist_reports_the_commit_the_sdist_was_made_from(source_tree, tmp_path):
    tree, commit = source_tree
    head = commit()
    sdist = _build("sdist", tree, tmp_path / "sdist")
    shutil.unpack_archive(sdist, tmp_path / "unpacked")
    wheel = _build("wheel", tmp_path / "unpacked" / "audiotrain-0.1.0", tmp_path / "wheel")  # no .git there
    assert _installed_version(wheel, tmp_path / "installed") == f"python -m audiotrain 0.1.0+g{head[:12]}"


def test_importing_a_recipes_main_module_starts_nothing(tmp_path, helps):
    """pydoc, sphinx's autodoc and pkgutil.walk_packages import every module: importing
    ``recipes.chords.__main__`` ran the 38-epoch demo into ./runs, and ``clap.__main__`` the CLAP demo."""
    code = (
        "import pydoc, audiotrain.recipes.chords.__main__, audiotrain.recipes.clap.__main__\n"
        "pydoc.render_doc('audiotrain.recipes.chords.__main__')\nprint('imported')"
    )
    done = run(["-c", code], tmp_path, AUDIOTRAIN_CACHE_DIR=str(tmp_path / "cache"))
    assert done.returncode == 0 and done.stdout.strip() == "imported", done.stderr
    assert list(tmp_path.iterdir()) == []
    helped = helps("audiotrain.recipes.clap", "--help")  # `python -m` still runs it
    assert helped.returncode == 0 and "usage: python -m audiotrain.recipes.clap" in helped.stdout


@pytest.fixture
def mlx_without_a_backend(tmp_path):
    """A folder for PYTHONPATH in which ``import mlx.core`` fails as it does after ``pip install audiotrain``
    on Linux without a backend extra (``mlx`` is installed, ``libmlx.so`` comes with mlx-cpu / mlx-cuda)."""
    fake = tmp_path / "site" / "mlx"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "core.py").write_text(
        'raise ImportError("libmlx.so: cannot open shared object file: No such file or directory")\n'
    )
    return os.pathsep.join([str(tmp_path / "site"), str(REPO)])


@pytest.mark.parametrize(
    "args",
    [
        ["-m", "audiotrain", "info"],
        ["-m", "audiotrain", "cache", "info"],
        ["-m", "audiotrain.recipes.chords", "--preset", "quick_test"],
        ["-m", "audiotrain.recipes.clap", "--preset", "quick_test"],
        ["-m", "audiotrain", "chords", "--preset", "quick_test"],
        # (launch imports mlx.core through audiotrain.distributed before mlx.launch starts any rank)
        ["-m", "audiotrain", "launch", "-n", "1", "--", "python", "-c", "pass"],
    ],
    ids=lambda args: " ".join(args[1:3]),
)
def test_without_an_mlx_backend_a_command_says_which_extra_to_install(tmp_path, mlx_without_a_backend, args):
    """Every command, `info` too (the one meant to diagnose the install), ended in a raw ImportError."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    done = run(args, cwd, PYTHONPATH=mlx_without_a_backend)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: no MLX backend is installed (import mlx.core: libmlx.so: cannot open")
    if sys.platform.startswith("linux"):
        assert line.endswith(
            "pip install 'audiotrain[cpu]' (or [cuda] for CUDA 12, [cuda13] for CUDA 13; only one)"
        )
    assert list(cwd.iterdir()) == []  # nothing written (no run folder)
    if args[2] == "info":
        assert "python " in done.stdout and "mlx " in done.stdout  # what is installed: the diagnosis


def test_without_an_mlx_backend_the_public_names_say_which_extra_to_install(tmp_path, mlx_without_a_backend):
    done = run(
        ["-c", "import audiotrain\nfrom audiotrain import Trainer"],
        tmp_path,
        PYTHONPATH=mlx_without_a_backend,
    )
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "audiotrain._system.MLXNotLoadable: no MLX backend is installed (import mlx.core: libmlx.so"
        )
    )
    assert "pip install 'audiotrain[cpu]'" in done.stderr or not sys.platform.startswith("linux")


def test_an_mlx_without_its_core_module_is_said_to_be_not_installed(monkeypatch):
    from audiotrain._system import MLXNotLoadable, check_mlx_loads

    # An ``mlx`` folder without its core module (import mlx.core: ModuleNotFoundError named "mlx.core").
    monkeypatch.setitem(sys.modules, "mlx.core", None)
    with pytest.raises(MLXNotLoadable, match=r"^MLX is not installed \(import mlx.core: "):
        check_mlx_loads()


_CUDA_ERROR = "cudaMallocManaged(&data, size) failed: no CUDA-capable device is detected"


def _refusal_without_a_gpu(monkeypatch, visible: str) -> str:
    """check_mlx_loads' message where importing mlx.core fails as a CUDA build's does on a process that sees
    no GPU (faked: this machine has no CUDA), with CUDA_VISIBLE_DEVICES set to `visible`."""
    import builtins

    from audiotrain._system import MLXNotLoadable, check_mlx_loads

    real_import = builtins.__import__

    def import_without_a_gpu(name, *args, **kwargs):
        if name == "mlx.core":
            raise ImportError(_CUDA_ERROR)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", import_without_a_gpu)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    with pytest.raises(MLXNotLoadable) as refused:
        check_mlx_loads()
    return str(refused.value)


def test_a_rank_given_a_gpu_the_machine_lacks_is_told_so_not_to_install_mlx(monkeypatch):
    """``audiotrain launch -n 2`` on a one-GPU machine: mlx.launch gave rank 1 CUDA_VISIBLE_DEVICES=1, its
    import of mlx.core failed with "no CUDA-capable device is detected", and it was told to pip install
    'audiotrain[cpu]' though MLX was installed. The import error is faked, as this machine has no CUDA."""
    message = _refusal_without_a_gpu(monkeypatch, visible="1")
    assert message.startswith('MLX cannot be loaded: this process was given GPU "1" (CUDA_VISIBLE_DEVICES)')
    assert _CUDA_ERROR in message and "pip install" not in message
    assert message.endswith("use -n no more than the GPUs, or --backend ring to share them")


def test_version_and_the_name_the_command_was_called_by(monkeypatch, capsys):
    """``audiotrain --version`` said "the following arguments are required: command", and the console script
    called itself ``python -m audiotrain``."""
    from audiotrain.__main__ import main
    from audiotrain._build import build_version  # (the version with its commit, as the run records)

    monkeypatch.setattr(sys, "argv", ["/venv/bin/audiotrain", "--version"])
    with pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code == 0 and capsys.readouterr().out == f"audiotrain {build_version()}\n"
    monkeypatch.setattr(sys, "argv", ["/repo/audiotrain/__main__.py"])  # python -m audiotrain
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out == f"python -m audiotrain {build_version()}\n"


@pytest.mark.slow  # ~3 s for each of the four commands on a loaded 2-core machine
@pytest.mark.parametrize(
    "args", [["chords", "--help"], ["clap", "--run_dir", "x"]], ids=lambda args: " ".join(args)
)
def test_the_console_script_runs_the_recipes_as_python_m_does(tmp_path, args, helps):
    """pipx and uv's tools install a package's console scripts only, and `audiotrain` had no recipe: "unknown
    command 'chords'". The output is the same but for the name of the command, `audiotrain chords` (wrapped
    to its length)."""
    recipe, *rest = args
    if rest == ["--help"]:  # (the helps test_a_recipes_help_names_the_command_it_was_started_by reads too)
        start, folder = helps, helps.folder
    else:
        folder = tmp_path
        start = lambda *argv: run(["-m", *argv], folder)  # noqa: E731
    direct = start(f"audiotrain.recipes.{recipe}", *rest)
    through_audiotrain = start("audiotrain", *args)

    def words(text: str, renamed: bool = False) -> str:
        if renamed:  # (started as `python -m audiotrain`: the console script's words, as the user typed them)
            text = text.replace(f"python -m audiotrain.recipes.{recipe}", f"python -m audiotrain {recipe}")
        return " ".join(re.sub(r" \\\n", " ", text).split())  # (and an example's continuation lines)

    assert (
        through_audiotrain.returncode,
        words(through_audiotrain.stdout),
        words(through_audiotrain.stderr),
    ) == (
        direct.returncode,
        words(direct.stdout, renamed=True),
        words(direct.stderr, renamed=True),
    )
    assert "audiotrain.recipes" not in through_audiotrain.stdout + through_audiotrain.stderr
    assert direct.returncode == (0 if rest == ["--help"] else 2) and list(folder.iterdir()) == []


def test_a_recipe_run_through_the_console_script_sees_the_argv_python_m_gives_it(monkeypatch):
    """The recipes read their arguments from sys.argv and record it as the run's command."""
    from audiotrain import _system
    from audiotrain.__main__ import main

    ran = []

    def run_recipe_command(module):
        from audiotrain._invocation import recipe_command

        ran.append((module, list(sys.argv), recipe_command("audiotrain.recipes.clap")))
        raise SystemExit(0)  # as the recipe's exit

    monkeypatch.setattr(_system, "run_recipe_command", run_recipe_command)
    monkeypatch.setattr(sys, "argv", ["/venv/bin/audiotrain", "clap", "--preset", "quick_test"])
    with pytest.raises(SystemExit):
        main()
    main_file = REPO / "audiotrain" / "recipes" / "clap" / "__main__.py"
    # The commands it prints are `audiotrain clap ...`, in the recipe's run only (this process goes on).
    command = ["audiotrain", "clap"]
    assert ran == [("audiotrain.recipes.clap.cli", [str(main_file), "--preset", "quick_test"], command)]
    assert "AUDIOTRAIN_RECIPE_THROUGH_COMMAND" not in os.environ
    # Started as `python -m audiotrain clap` (no console script on PATH), they say so.
    ran.clear()
    monkeypatch.setattr(sys, "argv", [str(REPO / "audiotrain" / "__main__.py"), "clap"])
    with pytest.raises(SystemExit):
        main()
    assert ran[0][2] == ["python", "-m", "audiotrain", "clap"]
    # Where the variable was there before (a process the command started), it is left as it was.
    monkeypatch.setenv("AUDIOTRAIN_RECIPE_THROUGH_COMMAND", "audiotrain")
    monkeypatch.setattr(sys, "argv", [str(REPO / "audiotrain" / "__main__.py"), "clap"])
    with pytest.raises(SystemExit):
        main()
    assert os.environ.get("AUDIOTRAIN_RECIPE_THROUGH_COMMAND") == "audiotrain"


TINY_CHORD_RUN = [
    "--data.demo_songs", "3", "--data.demo_test_songs", "1", "--data.demo_seconds", "6",
    "--data.window_frames", "32", "--batch_size", "4", "--num_epochs", "1", "--model.d_model", "16",
    "--model.n_layers", "1", "--model.n_heads", "2", "--model.ff_dim", "32", "--progress_bar", "false",
    "--processes", "1",
]  # fmt: skip


@pytest.fixture(scope="module")
def chords_through_audiotrain(tmp_path_factory):
    """A tiny chord demo run started as a pipx user starts it, `audiotrain chords ...` (here through
    ``python -m audiotrain``, which the console script calls), and the flags it was given."""
    root = tmp_path_factory.mktemp("through_audiotrain")
    flags = [*TINY_CHORD_RUN, "--data.cache_dir", str(root / "cache"), "--run_dir", str(root / "run")]
    done = run(["-m", "audiotrain", "chords", *flags], root)
    assert done.returncode == 0, done.stderr[-3000:]
    return done, root / "run", flags


def test_a_recipe_started_by_the_audiotrain_command_prints_commands_that_run_there(chords_through_audiotrain):
    """pipx and `uv tool install` put the `audiotrain` command alone on PATH: the run's closing "predict
    with: python -m audiotrain.recipes.chords predict ..." failed pasted there (no module audiotrain). The
    commands are written as the user started it: here `python -m audiotrain chords` (a `pip install --user`
    has no console script on PATH: `audiotrain chords ...` was not found), `audiotrain chords` from the
    console script (`test_a_recipe_run_through_the_console_script_sees_the_argv_python_m_gives_it`)."""
    done, run_dir, _ = chords_through_audiotrain
    assert (
        f"predict with: python -m audiotrain chords predict --checkpoint {run_dir}/checkpoints/best"
        in done.stdout
    )
    assert "audiotrain.recipes" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    "command", [["chords"], ["chords", "predict"], ["chords", "cv"], ["clap"], ["clap", "export"]],
    ids=" ".join,
)  # fmt: skip
def test_a_recipes_help_names_the_command_it_was_started_by(helps, command):
    recipe, *rest = command
    through_audiotrain = helps("audiotrain", *command, "--help")
    assert through_audiotrain.returncode == 0, through_audiotrain.stderr
    usage = " ".join(through_audiotrain.stdout.split()[: len(command) + 4])  # (argparse may wrap after it)
    assert usage == " ".join(["usage:", "python", "-m", "audiotrain", *command])
    assert "audiotrain.recipes" not in through_audiotrain.stdout
    direct = helps(f"audiotrain.recipes.{recipe}", *rest, "--help")
    assert direct.stdout.startswith(
        f"usage: {' '.join(['python -m', f'audiotrain.recipes.{recipe}', *rest])}"
    )


def test_a_chord_run_records_the_command_that_repeats_it(chords_through_audiotrain):
    """config.json's command was sys.argv: the path of the recipe's __main__.py in site-packages and the
    flags, no command one can run (the CLAP recipe recorded ``python -m audiotrain.recipes.clap ...``)."""
    _, run_dir, flags = chords_through_audiotrain
    record = json.loads((run_dir / "config.json").read_text())
    assert record["command"][1:] == ["-m", "audiotrain.recipes.chords", *flags]
    # The interpreter as a path: the recipe's Python names itself without the `..` in pytest's (a
    # `../venv/bin/python -m pytest`, as a packager runs the sdist's tests from their folder).
    assert Path(record["command"][0]).resolve() == Path(sys.executable).resolve()


def test_an_ascii_terminal_gets_escapes_instead_of_an_encoding_error(tmp_path):
    """Under ``LC_ALL=C PYTHONUTF8=0`` the CLAP recipe stopped with "'ascii' codec can't encode character
    '\\u2192'" (its tables and help print arrows)."""
    done = run(["-m", "audiotrain.recipes.clap", "--help"], tmp_path, LC_ALL="C", LANG="C", PYTHONUTF8="0",
               PYTHONIOENCODING="")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "text\\u2194audio retrieval" in done.stdout


def test_one_cache_folder_for_every_part_of_the_package(tmp_path, monkeypatch):
    """The CLAP demo ignored $AUDIOTRAIN_CACHE_DIR (and wrote to ~/.cache/audiotrain, where `cache info`
    never looked), and an empty variable put the chord demo's songs in the current folder while `cache`
    looked in ~/.cache/audiotrain."""
    from audiotrain.features.cache import default_cache_root
    from audiotrain.recipes.chords.config import ChordDataConfig
    from audiotrain.recipes.clap.config import ClapRecipeConfig
    from audiotrain.recipes.clap.train import _demo_cache

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    for value, root in (
        (str(tmp_path / "mine"), tmp_path / "mine"),
        ("", tmp_path / "home/.cache/audiotrain"),
    ):
        monkeypatch.setenv("AUDIOTRAIN_CACHE_DIR", value)
        assert ChordDataConfig().resolved_cache_dir() == root, value
        assert default_cache_root() == root / "features"
        assert _demo_cache(ClapRecipeConfig()) == root / "demo" / "clap"


def test_the_cache_follows_xdg_cache_home(tmp_path, monkeypatch):
    """$XDG_CACHE_HOME (scratch space on clusters whose HOME is small or read-only; pip and torch follow it)
    was ignored: the cache went to ~/.cache/audiotrain whatever it said."""
    from audiotrain.features.cache import default_cache_root
    from audiotrain.recipes.chords.config import ChordDataConfig
    from audiotrain.recipes.clap.config import ClapRecipeConfig
    from audiotrain.recipes.clap.train import _demo_cache

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AUDIOTRAIN_CACHE_DIR", raising=False)
    for xdg, root in (
        (str(tmp_path / "scratch"), tmp_path / "scratch" / "audiotrain"),
        ("", tmp_path / "home/.cache/audiotrain"),
        ("relative/cache", tmp_path / "home/.cache/audiotrain"),  # (the XDG specification: ignored)
    ):
        monkeypatch.setenv("XDG_CACHE_HOME", xdg)
        assert ChordDataConfig().resolved_cache_dir() == root, xdg
        assert default_cache_root() == root / "features"
        assert _demo_cache(ClapRecipeConfig()) == root / "demo" / "clap"
    monkeypatch.setenv("AUDIOTRAIN_CACHE_DIR", str(tmp_path / "mine"))  # the package's own variable first
    assert default_cache_root() == tmp_path / "mine" / "features"
    # A "~" no shell expanded (a .env file, a systemd unit) is the home folder, not a folder named "~" here.
    monkeypatch.setenv("AUDIOTRAIN_CACHE_DIR", "~/scratch-cache")
    assert default_cache_root() == tmp_path / "home" / "scratch-cache" / "features"


@pytest.mark.parametrize("buffered", [False, True], ids=["unbuffered", "buffered"])
@pytest.mark.parametrize(
    "module, status", [("audiotrain.recipes.chords", 141), ("audiotrain", 0)], ids=["chords", "audiotrain"]
)
def test_help_into_a_reader_that_left_ends_quietly(tmp_path, module, status, buffered):
    """`python -m audiotrain.recipes.chords --help | head -1` ended in a BrokenPipeError traceback (unbuffered,
    as the print raised) or in "Exception ignored ... BrokenPipeError" and status 120 (buffered, at exit).
    (Each command's own --help, argparse's, was quiet already: argparse ignores a failed write.) A recipe
    ends as a shell reports a command that SIGPIPE ended (what was left to do is not done); `audiotrain`'s
    listings with 0, as before."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone before the first line is printed
    unbuffered = {} if buffered else {"PYTHONUNBUFFERED": "1"}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=tmp_path, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120,
        env={**env, **unbuffered},
    )  # fmt: skip
    os.close(write_end)
    assert done.stderr == "" and done.returncode == status


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full, a device every write fills")
@pytest.mark.parametrize(
    "args",
    [
        ["audiotrain.recipes.chords", "--help"],
        ["audiotrain", "runs", "."],
        # Helps longer than stdout's buffer: argparse dropped the write's error, and they ended 0 unwritten.
        ["audiotrain.recipes.clap", "--help"],
        ["audiotrain.recipes.chords", "train", "--help"],
    ],
    ids=["chords", "audiotrain", "clap-help", "chords-train-help"],
)
def test_stdout_on_a_full_disk_is_one_error_line(tmp_path, args):
    """`evaluate ... > results.txt` on a full disk (here `> /dev/full`) ended in a 15-line OSError traceback,
    for every command that prints its results, where the files they write are one line naming the cause."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", *args],
            cwd=tmp_path, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120, env=env,
        )  # fmt: skip
    assert done.stderr == "error: cannot write to stdout: no space left on device\n"
    assert done.returncode == 1


@pytest.fixture(scope="module")
def chords_commands_started(tmp_path_factory):
    """A fresh process that ran the chords CLI's --help and train --help, then imported the name the CLI
    takes from CLAP: what it had loaded after each (one process for the two tests that read it)."""
    code = (
        "import sys\nfrom audiotrain.recipes.chords import cli\ncli.main(['--help'])\n"
        "try:\n    cli.main(['train', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('loaded:', *sorted(m for m in ('scipy.signal', 'scipy.fft') if m in sys.modules))\n"
        "print('kernels designed:', sys.modules['audiotrain.features.cqt']._plan.cache_info().misses)\n"
        "from audiotrain.models.clap import UnsafeCheckpointError\n"
        "print('of CLAP:', *sorted(m for m in sys.modules if m.startswith('audiotrain.models.clap.')))"
    )
    return run(["-c", code], tmp_path_factory.mktemp("chords_commands"))


def test_the_chords_commands_start_without_scipy_signal_or_scipy_fft(chords_commands_started):
    """Every chords command, --help and a flag typo too, spent half its start (~0.5 s) importing scipy.signal
    for a Hann window, as building the default config at import designed the CQT kernels; and ~0.3 s on
    scipy.fft, which no chords command uses. A config checks its CQT fits below Nyquist without the
    kernels."""
    done = chords_commands_started
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-3:-1] == ["loaded:", "kernels designed: 0"]


def test_the_chords_commands_start_without_clap_s_model(chords_commands_started):
    """Every chords command, --help included, imported CLAP's model, tokenizer and loader (~0.2 s of each
    start, and of each data-parallel rank's): the chords CLI names CLAP's `UnsafeCheckpointError`, and
    importing `audiotrain.models.clap.torch_bin` ran the package's __init__, which imported all of CLAP."""
    done = chords_commands_started
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "of CLAP: audiotrain.models.clap.torch_bin"


def test_the_chords_help_prints_before_the_recipe_loads(tmp_path):
    """``python -m audiotrain.recipes.chords --help`` loaded the whole recipe first (trainer, model, data
    pipeline, CLAP's checkpoint errors: 207 of audiotrain's modules, ~1 s of CPU, 3.5 s on a busy machine)
    to print a fixed text. The help prints from `cli_help`; the commands still load `cli`."""
    code = (
        "import runpy, sys\nsys.argv = ['chords', '--help']\ntry:\n"
        "    runpy.run_module('audiotrain.recipes.chords', run_name='__main__', alter_sys=True)\n"
        "except SystemExit as stop:\n    print('status', stop.code)\n"
        "print('loaded:', *sorted(m for m in ('audiotrain.recipes.chords.cli', 'audiotrain.train.trainer', "
        "'audiotrain.recipes.config_cli', 'audiotrain.models', 'soundfile', 'tqdm') if m in sys.modules))"
    )
    done = run(["-c", code], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: python -m audiotrain.recipes.chords [COMMAND] [options]\n")
    assert done.stdout.splitlines()[-2:] == ["status 0", "loaded:"]
    train_help = run(["-m", "audiotrain.recipes.chords", "train", "--help"], tmp_path)
    assert train_help.returncode == 0 and "--learning_rate" in train_help.stdout, train_help.stderr


def test_audiotrain_chords_help_prints_before_the_recipe_loads_too(tmp_path, helps):
    """``audiotrain chords --help`` (the console script, ``python -m audiotrain chords``) ran the recipe's
    `cli` module by name, not what ``python -m audiotrain.recipes.chords`` runs, so it still loaded the whole
    recipe (~1 s of CPU) to print its help."""
    code = (
        "import runpy, sys\nsys.argv = ['audiotrain', 'chords', '--help']\ntry:\n"
        "    runpy.run_module('audiotrain', run_name='__main__', alter_sys=True)\n"
        "except SystemExit as stop:\n    print('status', stop.code)\n"
        "print('loaded:', *sorted(m for m in ('audiotrain.recipes.chords.cli', 'audiotrain.train.trainer') "
        "if m in sys.modules))"
    )
    done = run(["-c", code], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "usage: " in done.stdout and " chords [COMMAND] [options]\n" in done.stdout
    assert done.stdout.splitlines()[-2:] == ["status 0", "loaded:"]
    clap = helps("audiotrain", "clap", "--help")
    assert clap.returncode == 0 and "--train.batch_size" in clap.stdout, clap.stderr


def test_the_tests_run_from_outside_the_clone(tmp_path):
    """``pytest /path/to/clone/tests/test_training_hooks.py`` run from another folder failed to import the
    shared helpers (``from tests.test_seed003_declarative import ...``: "No module named 'tests'"); the
    seed tests did so too. pyproject's pythonpath puts the clone's root on the path wherever pytest starts."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(REPO / "tests" / "test_training_hooks.py"),
            "--collect-only",
            "-q",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "No module named 'tests'" not in done.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["audiotrain", "--help"],
        ["audiotrain", "launch", "--help"],
        ["audiotrain.recipes.chords.example", "--help"],
    ],
    ids=["audiotrain", "launch", "chords-example"],
)  # fmt: skip
def test_help_under_python_OO_says_what_it_says_without(tmp_path, args):
    """`python -OO` (PYTHONOPTIMIZE=2, set in some container images) strips docstrings, and three --help
    texts were their module's or function's docstring: `audiotrain --help` lost its description, `launch
    --help` everything it says of exit statuses, Ctrl-C and the waits (its usage line and mlx.launch's
    options alone), and the chord example's help its commands."""
    plain = run(["-m", *args], tmp_path)
    optimized = run(["-OO", "-m", *args], tmp_path)
    assert plain.returncode == optimized.returncode == 0, optimized.stderr
    assert optimized.stdout == plain.stdout


def test_an_empty_cuda_visible_devices_is_named_as_hiding_every_gpu_not_as_a_missing_gpu(monkeypatch):
    """``CUDA_VISIBLE_DEVICES=`` (set empty: every GPU hidden) made the same import error say 'this process
    was given GPU "" (CUDA_VISIBLE_DEVICES), which this machine does not have' and to use fewer mlx.launch
    ranks, though no rank was given a GPU and no launcher was used."""
    message = _refusal_without_a_gpu(monkeypatch, visible="")
    assert 'GPU ""' not in message and "mlx.launch" not in message
    assert "CUDA_VISIBLE_DEVICES is set but empty" in message and _CUDA_ERROR in message
