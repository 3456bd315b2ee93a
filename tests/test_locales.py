"""Text that is not in the locale's encoding: process names any program sets (raw bytes in /proc), song names
and data paths recorded under one locale and read under another, non-ASCII metric names and ids, and errors
written in an ASCII locale.

"The ASCII locale" is ``LC_ALL=C`` with Python's UTF-8 mode and locale coercion off (a cron job, a systemd
unit or a container without ``LANG``, run with ``PYTHONUTF8=0``): file names and files are then decoded as
ASCII, what is not ASCII held as surrogate escapes. C.UTF-8 stands for the usual UTF-8 locale."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

ASCII_LOCALE = {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
UTF8_LOCALE = {"LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "PYTHONUTF8": "0"}

#: A process name that is no text: "café" cut by the kernel's 15 bytes in the middle of its "é", as a script
#: named ``entraînement_é.py`` run through its shebang shows.
NAME_NOT_TEXT = b"caf\xc3"
#: Gives the process running it `NAME_NOT_TEXT` as its name (``prctl(PR_SET_NAME)``: Linux).
TAKE_NAME_NOT_TEXT = """
import ctypes
assert ctypes.CDLL(None, use_errno=True).prctl(15, b"caf\\xc3", 0, 0, 0) == 0  # PR_SET_NAME
"""

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and prctl are Linux's")


def run_python(
    code: str, *args: str, locale: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """`code` run by this Python under `locale`, with this repository's audiotrain; fails on a non-zero exit."""
    env = {**os.environ, "PYTHONPATH": str(REPO), **locale}
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd or REPO,
        env=env,
        capture_output=True,
        timeout=300,
    )
    out, err = (os.fsdecode(text) for text in (done.stdout, done.stderr))
    assert done.returncode == 0, f"exit {done.returncode}\n{out}\n{err}"
    return subprocess.CompletedProcess(done.args, done.returncode, out, err)


@linux_only
def test_processes_whose_name_is_not_text_are_found_among_children_and_group_members():
    # The launcher's watchdog reads every process's /proc stat: such a name anywhere on the machine raised
    # UnicodeDecodeError there and ended the watchdog, so a job whose rank was blocked never ended.
    from audiotrain.distributed.failures import _children, _group_members
    from audiotrain.distributed.local import _started_by

    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            TAKE_NAME_NOT_TEXT + "import sys; print('named', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout.readline() == b"named\n"
        assert Path(f"/proc/{child.pid}/comm").read_bytes() == NAME_NOT_TEXT + b"\n"
        assert child.pid in _children(os.getpid())
        assert child.pid in _group_members(os.getpgid(0))
        assert _started_by(child.pid, os.getpid())
    finally:
        child.stdin.close()
        child.wait(timeout=30)


@linux_only
@pytest.mark.parametrize("locale", [UTF8_LOCALE, ASCII_LOCALE], ids=["utf8", "ascii"])
def test_memory_is_read_in_a_process_whose_name_is_not_text(locale: dict[str, str]):
    # /proc/self/status starts with the process's name: DeviceStatsMonitor (its CPU reading, at the first
    # logging step of a fit) and the recipes' check of the memory left under `ulimit -v` raised on it.
    done = run_python(
        TAKE_NAME_NOT_TEXT
        + """
import resource
from audiotrain.recipes.config_cli import training_memory_limit
from audiotrain.train.callbacks.device_stats import DeviceStatsMonitor
print(DeviceStatsMonitor()._cpu()["cpu_rss_bytes"] > 0)
# Under a data limit (ulimit -d) of 64 GB, what is left is that less what the process already uses.
resource.setrlimit(resource.RLIMIT_DATA, (64 * 2**30, resource.getrlimit(resource.RLIMIT_DATA)[1]))
limit, what = training_memory_limit()
print("ulimit -d" not in what or 0 < limit < 64 * 2**30)
""",
        locale=locale,
    )
    assert done.stdout.split() == ["True", "True"], done.stderr


SUBMISSION = """
import os, sys
from pathlib import Path
import numpy as np
from audiotrain import create_kaggle_trainer
from audiotrain.cross_validation import CVResult
from tests.test_seed003_declarative import TinyNet

folder = Path(sys.argv[1])
trainer = create_kaggle_trainer(TinyNet(), "titanic", run_dir=folder)
trainer.cv_result = CVResult(folder, [], ensemble=np.array([[0.25], [0.5], [0.75]]))

class Unwritable:
    def __str__(self):
        raise RuntimeError("no id")

try:
    trainer.create_submission(ids=["plain", "\\u65e5\\u672c.wav", Unwritable()])
except RuntimeError as error:
    print("refused:", error, sorted(p.name for p in folder.iterdir() if p.is_file()))
# A file name as this locale reads it ("Caf\\udcc3\\udca9.wav" in an ASCII locale), CJK, an emoji.
song = os.listdir(folder / "songs")[0]
print(trainer.create_submission(ids=[song, "\\u65e5\\u672c.wav", "\\U0001f3b5.wav"]))
"""


@pytest.mark.parametrize("locale", [UTF8_LOCALE, ASCII_LOCALE], ids=["utf8", "ascii"])
def test_a_kaggle_submission_is_utf8_and_never_left_half_written(tmp_path: Path, locale: dict[str, str]):
    # It was written in the locale's encoding, row by row: in an ASCII or Latin-1 locale a non-ASCII id
    # raised UnicodeEncodeError after the header was written, and the partial file refused the next call.
    (tmp_path / "songs").mkdir()
    (tmp_path / "songs" / "Café.wav").write_bytes(b"")
    done = run_python(SUBMISSION, str(tmp_path), locale=locale)
    assert "refused: no id []" in done.stdout, done.stdout + done.stderr
    assert (tmp_path / "submission.csv").read_bytes().decode("utf-8").splitlines() == [
        "id,prediction",
        "Café.wav,0.25",
        "日本.wav,0.5",
        "🎵.wav,0.75",
    ]
