"""Strict, offline test settings. audiotrain is imported before mlx so the optimized BLAS loads."""

import atexit
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
# W&B's files of a logger given no save_dir: a temporary folder, not ./wandb of the folder pytest runs in
# (wandb fixes its root folder at its first setup in this process, so a test's chdir does not move them).
# Made by the first process that loads this file (xdist's workers inherit it) and removed when that process
# ends, so that test runs leave nothing behind in the temporary folder.
if "WANDB_DIR" not in os.environ:
    os.environ["WANDB_DIR"] = tempfile.mkdtemp(prefix="audiotrain-tests-wandb-")
    atexit.register(shutil.rmtree, os.environ["WANDB_DIR"], ignore_errors=True)
os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from child_processes import checkout_first  # noqa: E402

# Every Python process a test starts imports this checkout's audiotrain, not the installed one (another
# checkout's, in a second worktree), whether it is given this environment, a copy of it or child_env's.
os.environ["PYTHONPATH"] = checkout_first(os.environ.get("PYTHONPATH"))


def compile_the_checkout_once():
    """Where Python writes no bytecode (``PYTHONDONTWRITEBYTECODE=1``, as on the machines CI runs on), every
    process a test starts would compile audiotrain's source again: about 1.7 s of CPU for each recipe run
    in a child process, of which the suite starts hundreds (tests/test_recipe_kills.py: 41 s of CPU
    without bytecode, 31 s with it). The first process of a run (xdist's controller, before its workers
    start, or pytest alone) compiles the checkout's modules once into their ``__pycache__`` folders, the
    place Python itself writes them elsewhere; every later process reads them (the setting stops writing,
    not reading). A file it cannot write there (a read-only checkout) is left to be compiled as before."""
    if not sys.dont_write_bytecode or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    import compileall

    root = Path(__file__).resolve().parents[1]
    for folder in ("audiotrain", "tests"):
        compileall.compile_dir(root / folder, quiet=2)


compile_the_checkout_once()

import audiotrain  # noqa: E402,F401  (must precede mlx)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import running_test  # noqa: E402
from reference import SKIP_PREFIX, strict  # noqa: E402

#: Most workers `-n auto` starts: each imports MLX and holds about 0.7 GB, and many tests start processes of
#: their own (2-rank jobs), so more workers add memory faster than speed.
MAX_AUTO_WORKERS = 8


@pytest.hookimpl(optionalhook=True)  # (a hook of pytest-xdist: no error where it is not installed)
def pytest_xdist_auto_num_workers(config):
    """``-n auto`` (the README's test command): one worker per core this process may use, at most
    `MAX_AUTO_WORKERS`. xdist's own count is the affinity mask (or psutil's count of the host's cores), which
    in a container limited by ``--cpus`` lists every core of the host; `usable_cores` also reads the cgroup's
    CPU quota. ``PYTEST_XDIST_AUTO_NUM_WORKERS`` still wins (None hands over to xdist, which reads it)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    from audiotrain._system import usable_cores

    return min(usable_cores(), MAX_AUTO_WORKERS)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Under ``-n`` (xdist), a test marked ``serial`` runs with no other test beside it: its setup, call and
    teardown hold a lock that every other test holds shared. These tests start 2-rank jobs or time signals;
    with another worker's test taking a core, a launcher's forwarded Ctrl-C once arrived mid-hook and was
    counted twice (one parallel run of the suite in six), and a rank whose peer died stayed blocked in MLX's
    ring (two in six, once with its test alone: `audiotrain.distributed.peer_watch` now ends such a rank).

    A turnstile keeps the exclusive lock from waiting for ever: whoever wants the lock passes the turnstile
    first, and a serial test keeps it until its exclusive lock is granted, so no new shared holder slips
    in meanwhile. The lock files lie in the run's temporary folder, which the workers share and pytest
    prunes.

    tests/distributed.py's job starters fail a test that is not marked ``serial`` (`running_test`), with or
    without ``-n``, so that the mark cannot be forgotten."""
    running_test.item = item
    try:
        if not os.environ.get("PYTEST_XDIST_WORKER"):
            yield
            return
        import fcntl

        factory = getattr(item.config, "_tmp_path_factory", None)
        folder = factory.getbasetemp().parent if factory is not None else Path(tempfile.gettempdir())
        run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID", "run")
        exclusive = item.get_closest_marker("serial") is not None
        with (
            open(folder / f"audiotrain-{run_id}.turnstile", "a") as turnstile,
            open(folder / f"audiotrain-{run_id}.lock", "a") as lock,
        ):
            fcntl.flock(turnstile, fcntl.LOCK_EX)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            finally:
                fcntl.flock(turnstile, fcntl.LOCK_UN)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    finally:
        running_test.item = None


@pytest.fixture(autouse=True, scope="session")
def one_process_unless_asked():
    """The recipes' automatic local processes (`audiotrain.distributed.local`) would start an MPI job for
    every training a test runs in this process: one process here, unless a test asks with --processes N
    (tests/test_local_processes.py does). Session-wide, so that module fixtures that train see it too."""
    from audiotrain.distributed import local

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(local, "MAX_AUTO_PROCESSES", 1)
        yield


@pytest.fixture(autouse=True)
def plots_off_unless_the_test_reads_them(request, monkeypatch):
    """Recipe runs write no figures (``AUDIOTRAIN_PLOTS=0``, here and in the processes a test starts) but for
    a test that reads them, which gets them as a user does whatever the shell set (tests/unrendered_plots.py
    says why and how): rendering was most of a tiny run's time."""
    from unrendered_plots import reads_plots

    if reads_plots(request.function):
        monkeypatch.delenv("AUDIOTRAIN_PLOTS", raising=False)
    else:
        monkeypatch.setenv("AUDIOTRAIN_PLOTS", "0")


@pytest.fixture(autouse=True)
def no_seed_from_another_test(monkeypatch):
    """A Trainer given no seed takes the last `seed_everything` seed: each test starts as a fresh process
    does (42), whatever an earlier test seeded."""
    from audiotrain.train import seeding

    monkeypatch.setattr(seeding, "_last_seed", None)
    # seed_everything leaves its seed in PL_GLOBAL_SEED, as Lightning's does: put it back after each test.
    monkeypatch.setenv("PL_GLOBAL_SEED", "")
    monkeypatch.delenv("PL_GLOBAL_SEED")
    monkeypatch.setenv("PL_SEED_WORKERS", "")
    monkeypatch.delenv("PL_SEED_WORKERS")


@pytest.fixture(autouse=True)
def no_stop_signal_from_another_test(monkeypatch):
    """The signal that stopped a command stays noted after it (for its exit status) and hushes what a stop
    would make redundant (a kernel compiled again): each test starts as a fresh process does, with none,
    whichever test of its xdist worker ran before it."""
    from audiotrain.train import interrupt

    monkeypatch.setattr(interrupt, "_stopped_by", None)


@pytest.fixture(autouse=True)
def no_terminal_settings_of_the_shell(monkeypatch):
    """Each test starts as in a plain shell, whatever the one pytest was started from: no COLUMNS or LINES
    (a narrow terminal's, or a CI runner's: --help then wrapped its usage line, and argparse reads them
    before a test's own pseudo-terminal), and no TERM=dumb (Emacs, some CI runners: no live bars, where
    the tests of a terminal's bars expect them). A test of those settings sets them itself."""
    for name in ("COLUMNS", "LINES"):
        monkeypatch.delenv(name, raising=False)
    if os.environ.get("TERM") == "dumb":
        monkeypatch.delenv("TERM")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def make_read_only(monkeypatch):
    """``make_read_only(folder)``: nothing can be created or deleted in ``folder`` any more. By chmod; where
    that does not stop writes (root), the system calls that create and delete files there fail as on a
    read-only mount, so the test runs either way."""
    made = []

    def make(folder: Path) -> None:
        folders = [folder, *(p for p in folder.rglob("*") if p.is_dir())]
        for path in folders:
            path.chmod(0o555)
        made.extend(folders)
        try:
            (folder / ".probe").touch()
        except PermissionError:
            return
        (folder / ".probe").unlink()
        real_open, real_unlink, real_mkdir = os.open, os.unlink, os.mkdir

        def refuse(path):
            if Path(path).absolute().is_relative_to(folder):
                raise OSError(30, "Read-only file system", str(path))

        def fake_open(path, flags, *args, **kwargs):
            if flags & os.O_CREAT:
                refuse(path)
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", fake_open)
        monkeypatch.setattr(os, "unlink", lambda path, **kw: refuse(path) or real_unlink(path, **kw))
        monkeypatch.setattr(os, "mkdir", lambda path, *a, **kw: refuse(path) or real_mkdir(path, *a, **kw))

    yield make
    for path in made:
        path.chmod(0o755)  # so that pytest can delete tmp_path


@pytest.fixture
def make_unreadable(monkeypatch):
    """``make_unreadable(folder)``: ``folder`` is as another user's folder made under umask 077 (a shared
    cache): it can be stat'ed, but not listed, nor anything in it stat'ed, opened or created. By chmod; where
    that does not stop reads (root), the system calls fail with EACCES as they would, so the test runs either
    way."""
    made = []

    def make(folder: Path) -> None:
        folder.chmod(0o000)
        made.append(folder)
        try:
            os.listdir(folder)
        except PermissionError:
            return

        def inside(path) -> bool:
            return isinstance(path, (str, os.PathLike)) and Path(path).absolute().is_relative_to(folder)

        def refuse(real, listing=False):
            def call(*args, **kwargs):
                path = args[0] if args else kwargs.get("path", ".")
                if inside(path) and (listing or Path(path).absolute() != folder):
                    raise PermissionError(13, "Permission denied", str(path))
                return real(*args, **kwargs)

            return call

        for name in ("stat", "lstat", "open", "unlink", "mkdir"):
            monkeypatch.setattr(os, name, refuse(getattr(os, name)))
        for name in ("listdir", "scandir"):
            monkeypatch.setattr(os, name, refuse(getattr(os, name), listing=True))

    yield make
    for path in made:
        path.chmod(0o755)  # so that pytest can delete tmp_path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep the parity tests honest (see tests/reference.py).

    A test that skips for a missing reference must be marked `parity`, or CI's reference run (which
    selects `-m parity`) would never run it. And under AUDIOTRAIN_REQUIRE_PARITY=1 a parity test that
    skips, for whatever reason, fails: that run exists to prove every comparison ran.
    """
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = str(report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr)
    marked = item.get_closest_marker("parity") is not None
    if SKIP_PREFIX in reason and not marked:
        report.outcome, report.longrepr = (
            "failed",
            f"{item.nodeid} needs a reference but is not marked parity",
        )
    elif marked and strict():
        report.outcome, report.longrepr = (
            "failed",
            f"parity test skipped under AUDIOTRAIN_REQUIRE_PARITY=1: {reason}",
        )


@pytest.fixture
def ctrl_c_raises():
    """SIGINT raises KeyboardInterrupt here, as in a terminal or a notebook kernel: a pytest-xdist worker (the
    README's test command) and a test run started in the background of a script (``cmd &``) inherit SIGINT
    ignored, and validate, test and predict install no handler of their own."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
