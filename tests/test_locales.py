"""Text that is not in the locale's encoding: process names any program sets (raw bytes in /proc), song names
and data paths recorded under one locale and read under another, non-ASCII metric names and ids, and errors
written in an ASCII locale.

"The ASCII locale" is ``LC_ALL=C`` with Python's UTF-8 mode and locale coercion off (a cron job, a systemd
unit or a container without ``LANG``, run with ``PYTHONUTF8=0``): file names and files are then decoded as
ASCII, what is not ASCII held as surrogate escapes. C.UTF-8 stands for the usual UTF-8 locale."""

from __future__ import annotations

import atexit
import contextlib
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from child_processes import child_env

from tests import deadlines

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
    env = child_env(locale)
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
        assert deadlines.read_line(child, "'named' from the child", 120) == b"named\n"
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


def test_proc_files_are_read_past_a_name_with_parentheses_and_their_sizes_in_bytes(tmp_path: Path):
    # A process's name may hold ")" and bytes that are not text: its stat fields start after the LAST ")"
    # (the watchdog reads the state and ppid there), and a status size is in kB (of 1024 bytes).
    from audiotrain._proc import own_status_bytes, stat_fields

    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "stat").write_bytes(b"42 (a) b\xff) S 7 42 42 0")
    (tmp_path / "self").mkdir()
    (tmp_path / "self" / "status").write_bytes(
        b"Name:\ta) b\xff\nVmRSS:\n" + b"VmRSS:\t  2048 kB\nVmSize:\t 10 kB\n"  # (a size-less line first)
    )
    assert stat_fields(42, tmp_path) == ["S", "7", "42", "42", "0"]
    assert stat_fields(43, tmp_path) is None  # (the process is gone)
    assert own_status_bytes("VmRSS", tmp_path) == 2048 * 1024
    assert own_status_bytes("VmSize", tmp_path) == 10 * 1024
    assert own_status_bytes("VmSwap", tmp_path) is None
    assert own_status_bytes("VmRSS", tmp_path / "no_proc") is None  # (macOS: no /proc)


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


CSV_FIT_AND_RESUME = """
import sys
from audiotrain import DataLoader, OptimizerConfig, Trainer, TrainModule
from audiotrain.train.loggers.csv_logger import CSVLogger
import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np

class Model(TrainModule):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 2)
    def __call__(self, x):
        return self.linear(x)
    def compute_loss(self, batch):
        logits = self(batch["x"])
        accuracy = mx.mean(mx.argmax(logits, -1) == batch["y"])
        return mx.mean(nn.losses.cross_entropy(logits, batch["y"])), {"pr\\u00e9cision": accuracy}
    def configure_optimizers(self):
        return OptimizerConfig(optimizer=optim.AdamW(learning_rate=1e-2))

rng = np.random.default_rng(0)
rows = [{"x": rng.normal(size=4).astype("float32"), "y": int(rng.integers(2))} for _ in range(16)]
root = sys.argv[1]
quiet = dict(default_root_dir=root, enable_progress_bar=False, enable_model_summary=False)
first = CSVLogger(root)
trainer = Trainer(max_epochs=1, logger=first, log_every_n_steps=1, **quiet)
trainer.fit(Model(), DataLoader(rows, batch_size=8), DataLoader(rows, batch_size=8))
again = CSVLogger(root, version=0)
resumed = Trainer(max_epochs=2, logger=again, log_every_n_steps=1, **quiet)
resumed.fit(
    Model(), DataLoader(rows, batch_size=8), DataLoader(rows, batch_size=8),
    ckpt_path=trainer.checkpoint_callback.last_model_path,
)
print("failures", first.failures, again.failures)
"""


@pytest.mark.parametrize("locale", [UTF8_LOCALE, ASCII_LOCALE], ids=["utf8", "ascii"])
def test_csv_logger_keeps_a_non_ascii_metric_through_a_fit_and_its_resume(tmp_path: Path, locale):
    # The CSV was written in UTF-8 but read back in the locale's encoding (when a column appears, and on
    # resuming): in an ASCII locale the logger failed at the first validation and stopped logging, and
    # refused to start on resuming.
    done = run_python(CSV_FIT_AND_RESUME, str(tmp_path), locale=locale)
    assert "failures 0 0" in done.stdout, done.stdout + done.stderr
    with open(tmp_path / "default" / "version_0" / "metrics.csv", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f))
    assert {"train_précision", "train_précision_epoch", "val_précision", "val_loss"} <= set(header), header
    assert [row[header.index("epoch")] for row in rows if row[-1]] == ["0", "1"], rows  # (both epochs)


LEAVE_AN_ERROR = """
import sys
from pathlib import Path
from audiotrain.distributed.failures import leave_error_for_launcher
from audiotrain.distributed.local import _errors_left_to_rank_0
leave_error_for_launcher("rank 0 failed: cannot read /data/\\u65e5\\u672c\\u306e\\u6b4c.wav")
print(ascii(_errors_left_to_rank_0(Path(sys.argv[1]))))
"""


@pytest.mark.parametrize("locale", [UTF8_LOCALE, ASCII_LOCALE], ids=["utf8", "ascii"])
def test_an_error_a_rank_leaves_for_the_launcher_is_written_and_read_in_any_locale(tmp_path: Path, locale):
    # It was written in the locale's encoding: a non-ASCII error raised UnicodeEncodeError there (the ranks
    # other than 0 then failed with that, not with rank 0's error), and left an empty file.
    from audiotrain.distributed.local import RANK_ERRORS_ENV, _errors_left_to_rank_0

    done = run_python(LEAVE_AN_ERROR, str(tmp_path), locale={**locale, RANK_ERRORS_ENV: str(tmp_path)})
    said = "error: rank 0 failed: cannot read /data/日本の歌.wav"
    assert done.stdout.strip() == ascii({0: said}), done.stdout + done.stderr
    assert _errors_left_to_rank_0(tmp_path) == {0: said}  # (the launcher, in the usual UTF-8 locale)


def test_a_rank_leaves_no_error_when_it_has_none_and_a_file_name_that_is_no_text_escaped(
    tmp_path, monkeypatch
):
    # None (`error_left_to_main` called outside an except block) was left as "error: None" for the launcher to
    # print; a name of bytes that are no UTF-8 (surrogate-escaped by Python) must not end the rank in an error.
    from audiotrain.distributed.failures import leave_error_for_launcher
    from audiotrain.distributed.local import RANK_ERRORS_ENV

    monkeypatch.setenv(RANK_ERRORS_ENV, str(tmp_path))
    leave_error_for_launcher(None)
    assert list(tmp_path.iterdir()) == []
    leave_error_for_launcher("cannot read " + os.fsdecode(b"/data/caf\xe9.wav"))
    assert (tmp_path / "rank0.txt").read_bytes() == b"error: cannot read /data/caf\\udce9.wav\n"


def _latin1_locale() -> dict[str, str] | None:
    """A Latin-1 locale: the machine's where it has one, else one built for these tests by glibc's
    ``localedef`` in a folder of their own (``LOCPATH``: no root needed, nothing installed); None where
    neither can be had (`test_there_is_a_latin1_locale_to_test_in` fails on Linux then)."""
    built = Path(tempfile.mkdtemp(prefix="audiotrain-latin1-"))
    atexit.register(shutil.rmtree, built, True)
    with contextlib.suppress(OSError):  # (no localedef: the machine's locales only)
        subprocess.run(
            ["localedef", "-i", "fr_FR", "-f", "ISO-8859-1", str(built / "fr_FR.ISO-8859-1")],
            capture_output=True,
            timeout=120,
        )
    candidates = [{"LC_ALL": name, "LANG": name} for name in ("fr_FR.ISO-8859-1", "de_DE.ISO-8859-1")]
    candidates.append({"LC_ALL": "fr_FR.ISO-8859-1", "LANG": "fr_FR.ISO-8859-1", "LOCPATH": str(built)})
    for candidate in candidates:
        locale = {**candidate, "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
        found = subprocess.run(
            [sys.executable, "-c", "import sys; print(sys.getfilesystemencoding())"],
            env={**os.environ, **locale},
            capture_output=True,
            text=True,
        )
        if found.stdout.strip() in ("iso8859-1", "latin-1"):
            return locale
    return None


LATIN1_LOCALE = _latin1_locale()


@linux_only
def test_there_is_a_latin1_locale_to_test_in():
    """The Latin-1 cases below are not left out without a word: glibc's localedef builds the locale."""
    assert LATIN1_LOCALE is not None, "neither an installed Latin-1 locale nor localedef (glibc) was found"


#: The locales a song record is made and read in: a UTF-8 one, the ASCII one, and a Latin-1 one (mojibake:
#: ``CafÃ©``) where the machine has it.
RECORD_LOCALES = [
    ("utf8", UTF8_LOCALE),
    ("ascii", ASCII_LOCALE),
    *([("latin1", LATIN1_LOCALE)] if LATIN1_LOCALE else []),
]

#: Song file names as bytes on disk (UTF-8, as every system writes them now; the last is no UTF-8 at all).
SONG_FILES = [
    b"Caf\xc3\xa9 del Mar",
    b"plain",
    b"\xe6\x97\xa5\xe6\x9c\xac",
    b"\xf0\x9f\x8e\xb5 song",
    b"bad\xff",
]

#: Makes the songs of the folder argv[1] (named as this locale reads their file names), then with "record"
#: prints their song record, with "resume" resumes (checks, then picks) the record of argv[3] on them and
#: says which songs `songs_trained_on` finds among them.
SONG_RECORD = """
import json, os, sys
from pathlib import Path
from audiotrain.datasets.chord_songs import SongEntry
from audiotrain.recipes.chords import evaluate
from audiotrain.recipes.chords.config import ChordDataConfig
from audiotrain.recipes.chords.data import SongSplits
from audiotrain.recipes.chords.song_record import (
    check_resume_songs, recorded_song_names, resumed_run_songs, song_record
)
from audiotrain.recipes.chords.task import CHECKPOINT_KEY

folder = Path(sys.argv[1])
names = sorted((Path(n).stem for n in os.listdir(folder)), key=os.fsencode)
songs = [SongEntry(name, folder / f"{name}.wav", folder / f"{name}.lab") for name in names]
splits = SongSplits(songs[:3], songs[3:4], songs[4:], source="test")
if sys.argv[2] == "record":
    print(json.dumps(song_record(splits, None)))
    sys.exit()
record = json.loads(Path(sys.argv[3]).read_text())
state = {"module_state": {CHECKPOINT_KEY: {"songs": record}}}
checkpoint = folder.parent / "checkpoints-elsewhere" / "best"
check_resume_songs(checkpoint, state, splits, ChordDataConfig(data_dir=str(folder)), from_demo=False)
resumed, said = resumed_run_songs(splits, recorded_song_names(checkpoint, state), checkpoint, str(folder))
print([[os.fsencode(song.name).hex() for song in getattr(resumed, part)] for part in ("train", "val", "test")])
print(repr(said))
evaluate.ckpt.read_model_state = lambda folder: state
trained_on = evaluate.songs_trained_on(checkpoint, names)
print({part: [os.fsencode(name).hex() for name in found] for part, found in trained_on.items()})
"""


@pytest.fixture(scope="module")
def resumes_of_a_record():
    """What a resume in each locale printed, by (the record's text, that locale): where the locales make one
    record text (as they must: its names are asserted alike), its resume in a locale runs once, not once per
    locale the record was made in. (The output names the songs by their bytes, not by the folder.)"""
    return {}


@pytest.mark.parametrize(
    "made_in", [locale for _, locale in RECORD_LOCALES], ids=[n for n, _ in RECORD_LOCALES]
)
def test_a_song_record_made_in_one_locale_resumes_and_evaluates_in_every_other(
    tmp_path: Path, made_in, resumes_of_a_record
):
    # The song names were stored as the locale decoded the file names: 'Caf\udcc3\udca9 del Mar' in an ASCII
    # locale, 'CafÃ© del Mar' in Latin-1. A resume in another locale then refused the same songs ("4 of the 5
    # songs it trained on are not among the songs of the data folder"), and evaluate's note on the songs the
    # model trained on missed them.
    folder = tmp_path / "chansons"
    folder.mkdir()
    for name in SONG_FILES:
        with open(os.fsencode(folder) + b"/" + name + b".wav", "wb"):
            pass
    record = run_python(SONG_RECORD, str(folder), "record", locale=made_in).stdout
    (tmp_path / "record.json").write_text(record)
    names = json.loads(record)["names"]
    # As a UTF-8 locale reads them, in the order of their bytes:
    assert names == {
        "train": ["Caf\xe9 del Mar", "bad\udcff", "plain"],
        "val": ["\u65e5\u672c"],
        "test": ["\U0001f3b5 song"],
    }
    files = [name.hex() for name in sorted(SONG_FILES)]
    on_disk = [files[:3], files[3:4], files[4:]]
    for _, resumed_in in RECORD_LOCALES:
        key = (record, json.dumps(resumed_in, sort_keys=True))
        if key not in resumes_of_a_record:
            resumes_of_a_record[key] = run_python(
                SONG_RECORD, str(folder), "resume", str(tmp_path / "record.json"), locale=resumed_in
            ).stdout
        resumed, said, trained_on = resumes_of_a_record[key].splitlines()
        assert json.loads(resumed.replace("'", '"')) == on_disk
        assert said == "''"  # the same songs, in the same parts: nothing to say
        assert json.loads(trained_on.replace("'", '"')) == {"train": sorted(on_disk[0]), "val": on_disk[1]}
        # (songs_trained_on sorts the names as the evaluating process reads them)


@pytest.mark.parametrize("locale", [UTF8_LOCALE, ASCII_LOCALE], ids=["utf8", "ascii"])
def test_a_stored_song_name_names_its_file_again_in_every_locale(locale: dict[str, str]):
    # `chords cv --overwrite` removes the oof/<song>.lab files of the songs its record lists: the stored
    # (UTF-8) name must turn back into this locale's name of the file, surrogate escapes in an ASCII one.
    done = run_python(
        """
import os
from audiotrain._file_names import local_name, portable_name
on_disk = os.fsdecode(b"Caf\\xc3\\xa9")
print(portable_name(on_disk) == "Caf\\u00e9", local_name("Caf\\u00e9") == on_disk)
""",
        locale=locale,
    )
    assert done.stdout.split() == ["True", "True"], done.stderr


def test_a_song_record_written_in_an_ascii_locale_by_an_older_audiotrain_is_read_as_utf8_reads_it():
    # Records written before the names were portable hold the surrogate escapes of an ASCII locale: read as
    # the names they are, and their digests still match.
    from audiotrain.recipes.chords.song_record import _checkpoint_song_names
    from audiotrain.recipes.split_record import names_digest

    old = {"train": ["Caf\udcc3\udca9", "plain"], "val": [], "test": ["bad\udcff"]}
    stored = {"names": old, "names_sha256": {part: names_digest(old[part]) for part in old}}
    read = _checkpoint_song_names(Path("ckpt"), stored)
    assert read == {"train": ["Caf\xe9", "plain"], "val": [], "test": ["bad\udcff"]}
    assert {part: names_digest(read[part]) for part in read} == stored["names_sha256"]


def test_runs_compare_sees_one_data_folder_recorded_in_two_locales(tmp_path: Path, monkeypatch, capsys):
    # config.json's data.data_dir holds the path as the training process read it: a run of an ASCII locale and
    # one of a UTF-8 locale on one folder were listed as differing in it.
    from audiotrain.__main__ import main

    for run, data_dir in (("ascii", "/data/chansons-\udcc3\udcbc"), ("utf8", "/data/chansons-\xfc")):
        record = {
            "config": {"learning_rate": 0.001, "data": {"data_dir": data_dir}},
            "versions": {"audiotrain": "0.1.0"},
            "command": ["chords"],
            "songs": {"train": ["a"], "test": ["b"]},
        }
        (tmp_path / run).mkdir()
        (tmp_path / run / "config.json").write_text(json.dumps(record))
    monkeypatch.chdir(tmp_path)
    assert main(["runs", "compare", "--json", "ascii", "utf8"]) == 0
    assert json.loads(capsys.readouterr().out)["settings"] == {}


SPLIT = """
import os, sys
from audiotrain.datasets.chord_songs import split_group, split_position
names = sorted((os.path.splitext(n)[0] for n in os.listdir(sys.argv[1])), key=os.fsencode)
print([split_position(split_group(name), 0) for name in names])
"""


def test_a_data_folder_splits_alike_in_every_locale(tmp_path: Path):
    # Each song's part comes from a hash of its name: in a Latin-1 locale (CafÃ©) the names hashed were others,
    # so the same --seed held out other test songs than in a UTF-8 locale.
    for name in SONG_FILES:
        with open(os.fsencode(tmp_path) + b"/" + name + b".wav", "wb"):
            pass
    positions = {run_python(SPLIT, str(tmp_path), locale=locale).stdout for _, locale in RECORD_LOCALES}
    assert len(positions) == 1, positions


#: Makes (in the folder argv[1]) a clip 'café.wav' and a song 'Canção.wav' with its annotation, named by a
#: UTF-8 metadata.csv and a UTF-8 pairs.csv (as a user writes them), then scans both.
NAMES_READ_FROM_FILES = """
import os, sys
import numpy as np, soundfile as sf
from audiotrain.datasets import scan_song_folder
from audiotrain.datasets.captions import scan_caption_folder
folder = os.fsencode(sys.argv[1])
for name in (b"/caf\\xc3\\xa9.wav", b"/Can\\xc3\\xa7\\xc3\\xa3o.wav"):
    with open(folder + name, "wb") as audio:  # (soundfile encodes a str path strictly: not in this locale)
        sf.write(audio, np.zeros(48000, np.float32), 48000, format="WAV")
with open(folder + b"/Can\\xc3\\xa7\\xc3\\xa3o.lab", "w") as lab:
    lab.write("0.0 1.0 C:maj\\n")
with open(folder + b"/metadata.csv", "w", encoding="utf-8") as rows:
    rows.write("file_name,caption\\ncaf\\u00e9.wav,\\u00e1gua para o caf\\u00e9\\n")
with open(folder + b"/pairs.csv", "w", encoding="utf-8") as rows:
    rows.write("audio,annotation\\nCan\\u00e7\\u00e3o.wav,Can\\u00e7\\u00e3o.lab\\n")
clips = scan_caption_folder(os.fsdecode(folder), sampling_rate=48000)
print(len(clips.clips), [skip.reason for skip in clips.skipped])
songs = scan_song_folder(os.fsdecode(folder), pairs_file=os.fsdecode(folder + b"/pairs.csv"))
print(len(songs.songs))
"""


@pytest.mark.parametrize("locale", [UTF8_LOCALE, ASCII_LOCALE], ids=["utf8", "ascii"])
def test_file_names_a_utf8_metadata_or_pairs_file_gives_name_their_files_in_every_locale(tmp_path, locale):
    """In the ASCII locale (a cron job: LC_ALL=C, PYTHONUTF8=0) the CLAP recipe stopped on a metadata.csv
    naming 'café.wav' with "error: 'ascii' codec can't encode characters in position 29-30", naming no file,
    and the chord recipe refused a pairs file naming 'Canção.wav' ("cannot be used ('ascii' codec ...)"):
    the names, read from UTF-8 text, were passed to the file functions, which take this locale's spelling."""
    done = run_python(NAMES_READ_FROM_FILES, str(tmp_path), locale=locale)
    assert done.stdout.splitlines() == ["1 []", "1"], done.stderr


def test_a_clap_model_in_a_folder_named_in_japanese_loads_in_every_locale(tmp_path: Path):
    """`clap evaluate --model 'runs/実験/hf_model'` in the ASCII locale (LC_ALL=C, PYTHONUTF8=0: the name held
    as surrogate escapes) stopped with "model.safetensors: cannot be read as safetensors (std::bad_cast)":
    MLX cannot take such a name. The weights file is opened by Python, as the trainer's checkpoints are."""
    from audiotrain.models.clap.loading import load_torch_state_dict

    import mlx.core as mx
    from clap_folders import tiny_checkpoint

    checkpoint = tiny_checkpoint(tmp_path)
    weights = load_torch_state_dict(checkpoint / "pytorch_model.bin")  # (as an export writes them)
    mx.save_safetensors(str(checkpoint / "model.safetensors"), {k: mx.array(v) for k, v in weights.items()})
    (checkpoint / "pytorch_model.bin").unlink()
    folder = Path(os.fsdecode(bytes(tmp_path) + "/実験 🎸".encode()))
    shutil.move(checkpoint, folder)
    for locale in (UTF8_LOCALE, ASCII_LOCALE):
        done = run_python(
            "import os, sys\n"
            "from audiotrain.models.clap import CLAP\n"
            "model = CLAP(os.fsdecode(os.fsencode(sys.argv[1])))\n"  # (the name as this locale spells it)
            "print(type(model).__name__)",
            os.fsdecode(os.fsencode(folder)),
            locale=locale,
        )
        assert done.stdout.strip() == "CLAP", done.stderr


@pytest.mark.parametrize("locale", [UTF8_LOCALE, ASCII_LOCALE], ids=["utf8", "ascii"])
def test_a_config_file_naming_a_folder_in_other_letters_is_read_in_every_locale(tmp_path: Path, locale):
    """`train --config c.json` whose data.data_dir is 'Músicas' (a run's own config.json, written in UTF-8,
    repeats it so) stopped in the ASCII locale with "error: 'ascii' codec can't encode character '\\xfa' in
    position 7", naming neither the file nor the setting."""
    os.mkdir(os.fsencode(tmp_path) + "/Músicas".encode())
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"data": {"data_dir": str(tmp_path) + "/Músicas"}}), encoding="utf-8")
    command = [sys.executable, "-m", "audiotrain.recipes.chords", "train", "--config", str(config)]
    done = subprocess.run(
        [*command, "--print_config"], env=child_env(locale), capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
    printed = json.loads(done.stdout)
    assert os.fsencode(printed["data"]["data_dir"]) == os.fsencode(tmp_path) + "/Músicas".encode()


@pytest.mark.parametrize("locale", [UTF8_LOCALE, ASCII_LOCALE], ids=["utf8", "ascii"])
def test_a_runs_recorded_annotations_folder_in_other_letters_is_found_in_every_locale(tmp_path: Path, locale):
    """A run trained with --data.annotations 'anotações' (recorded in its config.json as UTF-8 text):
    `evaluate --test_songs_of RUN` and `train --resume` in the ASCII locale (a cron job) said "annotations
    folder .../anota\\xe7\\xf5es does not exist" of the folder that is there."""
    annotations = os.fsencode(tmp_path) + "/anotações".encode()
    os.mkdir(annotations)
    record = {"config": {"data": {"annotations": os.fsdecode(annotations), "pairs": None}}}
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps(record), encoding="utf-8")
    done = run_python(
        "import os, sys\n"
        "from pathlib import Path\n"
        "from audiotrain.recipes.chords.evaluate import run_pairing\n"
        "print(os.path.isdir(run_pairing(Path(sys.argv[1]))['annotations']))",
        str(tmp_path / "run"),
        locale=locale,
    )
    assert done.stdout.strip() == "True", done.stderr
