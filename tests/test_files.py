"""audiotrain/_files.py from its callers' side: a file made by someone else is never replaced by a create,
what a killed write leaves is what the cleanup removes (and nothing else), a folder claim names the real
error, and JSON round trips keep their values."""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from audiotrain._files import (
    claim_next_folder,
    create_atomically,
    finite_or_null,
    read_json_file,
    remove_killed_writes,
    restore_non_finite,
    write_json_atomically,
    write_output,
)

import pytest


def _no_hard_links(monkeypatch):
    """A file system without hard links (FAT, exFAT, some network shares): ``link`` fails with EPERM."""

    def refuse(*_args, **_kwargs):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", refuse)


def test_without_hard_links_a_create_still_refuses_an_existing_file_and_keeps_it(tmp_path, monkeypatch):
    """The fallback for a file system without hard links writes the file in place: it must still be created
    exclusively, or a user's file (or another run's first file) is replaced without a word."""
    _no_hard_links(monkeypatch)
    users = tmp_path / "predictions.json"
    users.write_text("the user's own")
    with pytest.raises(FileExistsError):
        create_atomically(users, lambda handle: handle.write(b"new"))
    with pytest.raises(FileExistsError):
        write_output(users, lambda tmp: tmp.write_bytes(b"new"), replace=False)
    assert users.read_text() == "the user's own"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["predictions.json"]  # no temporary left

    create_atomically(tmp_path / "new.json", lambda handle: handle.write(b"new"))
    assert (tmp_path / "new.json").read_bytes() == b"new"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["new.json", "predictions.json"]


def test_replacing_another_users_file_in_a_sticky_folder_names_the_file_and_its_owner(tmp_path, monkeypatch):
    """A replace that the kernel refuses (EPERM: another user's file in a folder with the sticky bit, a file
    written there by that user since a command checked) was "[Errno 1] Operation not permitted:
    '.../.tmp-<hex>.lab' -> '.../song.lab'", naming the temporary file first. Now one line names the file
    and whose it is; it stays as it was, and no temporary file is left."""
    shared = tmp_path / "hand_in"
    shared.mkdir()
    shared.chmod(0o1777)
    theirs = shared / "song.lab"
    theirs.write_text("the other student's")
    another_user = theirs.stat().st_uid + 1
    monkeypatch.setattr(os, "geteuid", lambda: another_user)  # (root may replace anyone's file: as a user)

    def refuse(*_args, **_kwargs):  # (what the kernel says to a user there; root is let through)
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(PermissionError) as info:
        write_output(theirs, lambda tmp: tmp.write_bytes(b"mine"), replace=True)
    assert str(info.value).startswith(f"this user cannot replace {theirs}: "), str(info.value)
    assert f"in {shared}, a folder with the sticky bit" in str(info.value)
    assert theirs.read_text() == "the other student's"
    assert [path.name for path in shared.iterdir()] == ["song.lab"]


@pytest.mark.parametrize("name", ["scores.json", "history.png"])
def test_what_a_write_killed_midway_leaves_is_what_the_resume_removes(tmp_path, name):
    """A run killed (SIGKILL, out of memory) while it writes a file leaves its temporary file; the resume's
    `remove_killed_writes` (by the temporary's name: prefix, hex, the target's suffix) must find it."""
    script = textwrap.dedent(
        f"""
        import os, signal
        from audiotrain._files import write_atomically

        def write(handle):
            handle.write(b"half of it")
            handle.flush()
            os.kill(os.getpid(), signal.SIGKILL)

        write_atomically({str(tmp_path / name)!r}, write)
        """
    )
    killed = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[1])
    assert killed.returncode == -signal.SIGKILL
    (left,) = tmp_path.iterdir()  # the temporary file, not the target
    assert left.name != name

    assert remove_killed_writes(tmp_path, [Path(name).suffix.lstrip(".")]) == [left]
    assert list(tmp_path.iterdir()) == []


def test_remove_killed_writes_leaves_names_that_only_look_like_a_temporary(tmp_path):
    """Only a regular file named exactly ``.tmp-<32 hex>.SUFFIX`` is a killed write's: a user's backup of one
    and a link named like one stay."""
    hex32 = "0123456789abcdef" * 2
    leftover = tmp_path / f".tmp-{hex32}.json"
    leftover.write_text("{")
    backup = tmp_path / f".tmp-{hex32}.json.bak"
    backup.write_text("{}")
    (tmp_path / "target.json").write_text("{}")
    link = tmp_path / f".tmp-{'f' * 32}.json"
    link.symlink_to(tmp_path / "target.json")

    assert remove_killed_writes(tmp_path, ["json"]) == [leftover]
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([backup.name, link.name, "target.json"])


def test_a_claim_under_a_file_names_that_error_not_every_folder_taken(tmp_path):
    """Only a folder that exists is passed over: a file where the logs folder should be is its own error,
    not "every one tried exists already"."""
    logs = tmp_path / "logs"
    logs.write_text("not a folder")
    with pytest.raises(NotADirectoryError):
        claim_next_folder([logs / "version_0", logs / "version_1"])


def test_a_claim_with_every_folder_taken_names_the_first_and_the_last(tmp_path):
    for number in range(3):
        (tmp_path / f"version_{number}").mkdir()
    with pytest.raises(FileExistsError, match=r"\(\S*version_0 to \S*version_2\) exists already"):
        claim_next_folder([tmp_path / f"version_{number}" for number in range(3)])


def test_non_finite_values_under_int_keys_come_back_from_json(tmp_path):
    """json.dumps writes an int key as its digits: the recorded path must name it so, or the value read back
    is None where a NaN or an infinity was."""
    non_finite: list = []
    strict = finite_or_null(
        {"per_epoch": {3: math.nan, 4: 0.5}, "ends": [1.0, -math.inf]}, non_finite=non_finite
    )
    write_json_atomically(tmp_path / "state.json", {"value": strict, "non_finite": non_finite})

    read = read_json_file(tmp_path / "state.json", ValueError)
    restore_non_finite(read["value"], read["non_finite"])
    assert math.isnan(read["value"]["per_epoch"]["3"]) and read["value"]["per_epoch"]["4"] == 0.5
    assert read["value"]["ends"] == [1.0, -math.inf]


def test_a_hand_edited_non_finite_list_is_passed_over_where_it_names_no_null():
    """An entry whose path runs through a number, or names a value that is not null, changes nothing and
    raises nothing; a good entry beside it is still restored."""
    value = {"a": 5, "b": 1.5, "c": None}
    restore_non_finite(value, [[["a", "x"], "NaN"], [["b"], "Infinity"], [["c"], "-Infinity"]])
    assert value["a"] == 5 and value["b"] == 1.5 and value["c"] == -math.inf


def test_a_json_file_with_a_byte_order_mark_is_read(tmp_path):
    """Notepad and PowerShell start a UTF-8 file with a BOM; json refuses it ("Unexpected UTF-8 BOM")."""
    path = tmp_path / "config.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"hidden_size": 8}).encode())
    assert read_json_file(path, ValueError) == {"hidden_size": 8}


def test_json_written_atomically_ends_in_a_newline(tmp_path):
    write_json_atomically(tmp_path / "scores.json", {"accuracy": 0.5})
    assert (tmp_path / "scores.json").read_text().endswith("}\n")
