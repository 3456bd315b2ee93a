"""Commands in environments unlike a developer's: closed descriptors, no home, a deleted current folder,
paths that are not UTF-8, a log reader that goes away, `-W error`, ``TERM=dumb``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from child_processes import child_env

REPO = Path(__file__).resolve().parents[1]

#: The README's first example, a fit of 2 epochs on 64 random rows: ``python -c CORE_FIT [ROOT [EPOCHS]]``.
CORE_FIT = """
import sys
import audiotrain
import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from audiotrain import DataLoader, Dataset, OptimizerConfig, Trainer, TrainModule

class Rows(Dataset):
    def __init__(self, n=64):
        rng = np.random.default_rng(0)
        self.x = rng.standard_normal((n, 16)).astype(np.float32)
        self.y = (self.x[:, 0] > 0).astype(np.int32)
    def __len__(self):
        return len(self.x)
    def __getitem__(self, i):
        return {"x": self.x[i], "y": self.y[i]}

class Model(TrainModule):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(16, 2)
    def __call__(self, x):
        return self.linear(x)
    def compute_loss(self, batch):
        logits = self(batch["x"])
        return mx.mean(nn.losses.cross_entropy(logits, batch["y"])), {}
    def configure_optimizers(self):
        return OptimizerConfig(optimizer=optim.AdamW(learning_rate=1e-2))

root = sys.argv[1] if len(sys.argv) > 1 else "logs"
epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 2
trainer = Trainer(max_epochs=epochs, default_root_dir=root)
trainer.fit(Model(), DataLoader(Rows(), batch_size=8, shuffle=True), DataLoader(Rows(16), batch_size=8))
print("DONE", trainer.checkpoint_callback.last_model_path, flush=True)
"""


def _env(**changes: str | None) -> dict[str, str]:
    env = child_env()
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run_shell(line: str, cwd: Path | None = None, **env: str | None) -> subprocess.CompletedProcess:
    """`line` run by sh, with ``$PY`` the test's Python: redirections such as ``>&-`` are the shell's."""
    return subprocess.run(
        ["sh", "-c", line],
        cwd=cwd or REPO,
        env={**_env(**env), "PY": sys.executable},
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.parametrize(
    "command",
    [
        "-m audiotrain info",
        "-m audiotrain.recipes.chords --help",
        "-m audiotrain.recipes.clap --help",
    ],
)
def test_a_command_with_stdout_closed_ends_with_its_own_status(command: str):
    """A cron job or a daemon may run a command with no stdout (`>&-`): Python's `sys.stdout` is then None.
    The command does its work and exits 0, not in an AttributeError from flushing a stream that is not."""
    out = run_shell(f'"$PY" {command} >&-')
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr


def _without_home(tmp_path: Path) -> str:
    """A folder for PYTHONPATH whose sitecustomize makes this a process with no home folder: HOME unset and
    a uid with no passwd entry (``docker run --user 12345`` under ``env -i``), where `Path.home` raises."""
    shim = tmp_path / "nohome"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(
        "import os, pwd\n"
        "os.environ.pop('HOME', None)\n"
        "def _none(uid):\n"
        "    raise KeyError(f'getpwuid(): uid not found: {uid}')\n"
        "pwd.getpwuid = _none\n"
    )
    return f"{shim}{os.pathsep}{REPO}"


@pytest.mark.parametrize("module", ["audiotrain.recipes.chords", "audiotrain.recipes.clap"])
def test_without_a_home_folder_a_recipe_runs_where_its_folders_are_given(tmp_path: Path, module: str):
    out = run_shell(
        f'"$PY" -m {module} --help',
        PYTHONPATH=_without_home(tmp_path),
        HOME=None,
        MPLCONFIGDIR=None,
        XDG_CONFIG_HOME=None,
        XDG_CACHE_HOME=str(tmp_path / "xdg"),
        AUDIOTRAIN_CACHE_DIR=str(tmp_path / "cache"),
    )
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout and "Traceback" not in out.stderr


def test_without_a_home_folder_or_a_cache_folder_one_line_names_the_variable_to_set(tmp_path: Path):
    out = run_shell(
        '"$PY" -m audiotrain.recipes.chords --preset quick_test --processes 1 --run_dir run',
        cwd=tmp_path,
        PYTHONPATH=_without_home(tmp_path),
        HOME=None,
        XDG_CACHE_HOME=None,
        AUDIOTRAIN_CACHE_DIR=None,
    )
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    error = out.stderr.splitlines()[0]
    assert error.startswith("error: ") and "no home folder" in error and "AUDIOTRAIN_CACHE_DIR" in error


def test_without_a_home_folder_the_cache_error_names_every_variable_that_gives_one(monkeypatch):
    from audiotrain import _system

    monkeypatch.setattr(_system, "home_folder", lambda: None)
    monkeypatch.delenv("AUDIOTRAIN_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    with pytest.raises(
        _system.NoHomeFolderError, match=r"set AUDIOTRAIN_CACHE_DIR .* \(or XDG_CACHE_HOME, or HOME\)"
    ):
        _system.cache_dir()


def test_a_strict_utf8_stdout_escapes_a_file_name_that_is_not_utf8(monkeypatch):
    """``--run_dir $'r\\xffn'`` under an installed UTF-8 locale (strict errors, not C.UTF-8's): printing the
    path stopped the command with UnicodeEncodeError after its work."""
    from audiotrain._system import escape_what_stdout_cannot_encode

    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(io.BytesIO(), encoding="utf-8"))
    escape_what_stdout_cannot_encode()
    print(os.fsdecode(b"r\xffn"), file=out)
    out.flush()
    assert out.buffer.getvalue() == b"r\\udcffn\n"


def _in_a_deleted_folder(tmp_path: Path, line: str) -> str:
    """`line`, run by sh in a folder deleted under it (``cd run && rm -r ../run`` in another terminal)."""
    folder = tmp_path / "gone"
    folder.mkdir()
    return f"cd '{folder}' && rmdir '{folder}' && {line}"


@pytest.mark.parametrize(
    "command",
    [
        "audiotrain.recipes.chords --preset quick_test --processes 1",
        "audiotrain.recipes.clap --preset quick_test --train.processes 1",
    ],
)
def test_a_recipe_in_a_deleted_current_folder_says_so_in_one_line(tmp_path: Path, command: str):
    out = run_shell(_in_a_deleted_folder(tmp_path, f'"$PY" -m {command}'), cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    error = out.stderr.splitlines()[0]
    assert error.startswith("error: the current directory no longer exists (deleted?)"), out.stderr
    assert "cd to an existing folder or give absolute paths" in error
    assert "Traceback" not in out.stderr


def test_the_trainer_in_a_deleted_current_folder_names_the_cause(tmp_path: Path):
    # (a script file: under python -c, Python 3.13.0-3.13.2 fails before, at import; see the test below)
    script = tmp_path / "fit.py"
    script.write_text(CORE_FIT)
    out = run_shell(_in_a_deleted_folder(tmp_path, f"\"$PY\" '{script}'"), cwd=tmp_path)
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("FileNotFoundError: the current directory no longer exists (deleted?)"), last
    assert "'logs/checkpoints'" in last


def test_python_c_in_a_deleted_current_folder_imports_audiotrain_or_names_the_cause(tmp_path: Path):
    """On Python 3.13.0-3.13.2, under python -c, from standard input or at the prompt, a failed module
    attribute lookup raises "SystemError: error return without exception set" once the current folder is
    deleted (CPython issue 130932), so a script's ``import numpy`` ended so. ``import audiotrain`` names the
    cause there; on other versions both imports work."""
    probe = run_shell(
        _in_a_deleted_folder(tmp_path, '"$PY" -c "import json; json.no_such_name"'), cwd=tmp_path
    )
    affected = "SystemError" in probe.stderr
    line = '"$PY" -c "import audiotrain, numpy; print(numpy.ones(2).sum())"'
    out = run_shell(_in_a_deleted_folder(tmp_path, line), cwd=tmp_path)
    if not affected:
        assert "AttributeError" in probe.stderr
        assert out.returncode == 0 and out.stdout.strip() == "2.0", out.stderr
        return
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("FileNotFoundError: the current directory no longer exists (deleted?)"), last
    assert "CPython issue 130932" in last and "cd to an existing folder" in last


def test_the_clap_demo_writes_a_folder_whose_name_is_not_utf8(tmp_path: Path):
    """A Latin-1 byte in ``--out`` (an old disk, a Samba share) works as in the chord recipe: the tokenizer
    files are written there, and read back from there."""
    out_dir = os.fsdecode(bytes(tmp_path) + b"/caf\xe9 clap")
    out = subprocess.run(
        [sys.executable, "-m", "audiotrain.recipes.clap", "--preset", "quick_test", "--train.processes", "1"]
        + ["--out", out_dir],
        cwd=tmp_path,
        env=_env(XDG_CACHE_HOME=str(tmp_path / "cache"), AUDIOTRAIN_CACHE_DIR=None),
        capture_output=True,
        encoding="utf-8",
        errors="replace",  # (the folder's name is printed as its bytes)
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    from audiotrain.models.clap.tokenizer import ClapTokenizer

    exported = Path(out_dir) / "hf_model"
    assert (exported / "tokenizer.json").is_file()
    tokenizer = ClapTokenizer.from_pretrained(exported)
    assert tokenizer.decode(tokenizer(["a dog barks"])["input_ids"][0]) == "a dog barks"


@pytest.mark.parametrize("lines_read", [1, 12])  # (in the model's summary; in the epochs' progress lines)
def test_the_trainer_whose_log_reader_goes_away_stops_and_saves_as_for_ctrl_c(
    tmp_path: Path, lines_read: int
):
    """``python fit.py 2>&1 | head -3``: once the reader has gone, the progress lines cannot be written. The
    fit stops as on Ctrl-C and saves ``interrupted`` (and ``last``) to resume from, not a BrokenPipeError
    that lost the training."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CORE_FIT, str(tmp_path / "run"), "200"],
        cwd=tmp_path,
        env=_env(COLUMNS="80"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    seen = [proc.stdout.readline() for _ in range(lines_read)]  # (the reader reads, then goes away)
    assert lines_read == 1 or seen[-1].startswith(b"Epoch "), seen
    proc.stdout.close()
    proc.wait(timeout=240)
    interrupted = tmp_path / "run" / "checkpoints" / "interrupted"
    assert (interrupted / "trainer_state.json").is_file()
    assert (tmp_path / "run" / "checkpoints" / "last" / "model.safetensors").is_file()
    state = json.loads((interrupted / "trainer_state.json").read_text())
    assert state["progress"]["epoch"] < 199, state  # stopped there, early: not at the end of its 200 epochs


@pytest.mark.parametrize(
    "value, traceback", [("0", False), ("false", False), ("No", False), ("", False), ("1", True)]
)
def test_audiotrain_traceback_0_means_off(tmp_path: Path, value: str, traceback: bool):
    """``AUDIOTRAIN_TRACEBACK=0`` turned tracebacks on (and the exit status from 2 to 1)."""
    (tmp_path / "song.wav").write_bytes(b"")
    out = run_shell(
        '"$PY" -m audiotrain.recipes.chords predict --checkpoint "$PWD/none" song.wav',
        cwd=tmp_path,
        AUDIOTRAIN_TRACEBACK=value,
    )
    assert ("Traceback" in out.stderr) is traceback, out.stderr
    assert out.returncode == (1 if traceback else 2), out.stderr
    if not traceback:
        assert out.stderr.startswith("error: checkpoint folder"), out.stderr


TINY_TRAINING = [
    "--data.window_frames", "32", "--batch_size", "4", "--num_epochs", "1", "--progress_bar", "false",
    "--model.d_model", "32", "--model.n_layers", "1", "--model.n_heads", "2", "--model.ff_dim", "64",
    "--data.test_fraction", "0",
]  # fmt: skip


@pytest.fixture
def songs(tmp_path: Path) -> Path:
    from audiotrain.datasets.chord_demo import generate_demo_songs

    generate_demo_songs(tmp_path / "songs", n_songs=4, seed=9, song_seconds=6)
    return tmp_path / "songs"


def test_a_read_only_feature_cache_is_reported_once(tmp_path: Path, songs: Path, make_read_only, capsys):
    from audiotrain.recipes.chords import cli as chords

    cache = tmp_path / "cache"
    cache.mkdir()
    make_read_only(cache)
    flags = ["train", "--data", str(songs), *TINY_TRAINING, "--data.cache_dir", str(cache)]
    with pytest.warns(UserWarning, match="cannot be written") as caught:
        assert chords.main([*flags, "--run_dir", str(tmp_path / "run")]) == 0
    assert len([w for w in caught if "cannot be written" in str(w.message)]) == 1
    err = capsys.readouterr().err
    [computing] = [line for line in err.splitlines() if line.startswith("computing the features")]
    assert "cannot be written (" not in computing and "in memory only" in computing, computing


def test_a_warning_made_an_error_ends_a_recipe_in_one_error_line(
    tmp_path: Path, songs: Path, make_read_only, monkeypatch, capsys
):
    """``python -W error -m audiotrain.recipes.chords train ...`` with a read-only feature cache: its warning,
    made an error by the user, ends the command as the recipes' other errors do: one line, exit 2."""
    import warnings

    from audiotrain._system import run_recipe_command

    cache = tmp_path / "cache"
    cache.mkdir()
    make_read_only(cache)
    flags = ["train", "--data", str(songs), *TINY_TRAINING, "--data.cache_dir", str(cache)]
    monkeypatch.setattr(sys, "argv", ["chords", *flags, "--run_dir", str(tmp_path / "run")])
    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)  # (the command sets its own)
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "matplotlib"))
    monkeypatch.delenv("AUDIOTRAIN_TRACEBACK", raising=False)
    with warnings.catch_warnings(), pytest.raises(SystemExit) as ended:
        warnings.simplefilter("error")
        run_recipe_command("audiotrain.recipes.chords.cli")
    assert ended.value.code == 2
    err = capsys.readouterr().err
    assert "error: UserWarning: the feature cache at" in err and "cannot be written" in err, err
    assert "Traceback" not in err
    # AUDIOTRAIN_TRACEBACK asks for the traceback instead: the warning is raised, not said in a line.
    monkeypatch.setenv("AUDIOTRAIN_TRACEBACK", "1")
    monkeypatch.setattr(sys, "argv", ["chords", *flags, "--run_dir", str(tmp_path / "traced")])
    with warnings.catch_warnings(), pytest.raises(UserWarning, match="the feature cache at"):
        warnings.simplefilter("error")
        run_recipe_command("audiotrain.recipes.chords.cli")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("term, plain", [("dumb", True), ("xterm-256color", False)])
def test_a_dumb_terminal_gets_plain_progress_lines(tmp_path: Path, monkeypatch, term: str, plain: bool):
    """TERM=dumb (Emacs's M-x shell, some CI terminals) showed the nested bars' cursor-up escapes as
    garbage: it gets one line per epoch, as a log does."""
    monkeypatch.setenv("TERM", term)
    monkeypatch.setattr(sys, "stderr", _Terminal())
    monkeypatch.setattr(sys, "argv", ["fit.py", str(tmp_path / "run")])
    exec(CORE_FIT, {"__name__": "__main__"})
    shown = sys.stderr.getvalue()
    assert ("\x1b[A" in shown) is not plain, shown[-500:]
    assert ("\nEpoch 0: 8/8 batches" in shown) is plain, shown[-500:]


def test_the_tests_of_a_terminal_and_of_help_pass_from_a_narrow_or_dumb_terminal(tmp_path: Path):
    """The test suite started from Emacs (TERM=dumb) or with COLUMNS set (a narrow terminal that exports it,
    a CI runner's): the tests of a terminal's live bars got lines, and those of a command's usage line got
    it wrapped, 7 failures among them. conftest.py now starts each test without those settings."""
    from child_processes import REPO

    env = {k: v for k, v in child_env().items() if not k.startswith("PYTEST_")}  # (not an xdist worker's)
    env.update(COLUMNS="20", LINES="5", TERM="dumb")
    tests = [
        "tests/test_progress.py::test_a_terminal_gets_live_bars",
        "tests/test_runs_listing.py::test_the_console_script_names_itself_in_runs_help",
    ]
    options = ["-q", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 't'}"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *options, *tests],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
