"""Caption folders from the user's side: layouts, bad input, crops and captions per epoch, the demo."""

import csv
import dataclasses
import json
import os
import re
import time
import unicodedata
from pathlib import Path

import audiotrain.audio
from audiotrain.datasets.caption_demo import LABELS, CaptionDemoConfig, make_caption_demo
from audiotrain.datasets.captions import (
    MIN_CLIP_SECONDS,
    CaptionDataset,
    CaptionFolderError,
    holdout_split,
    normalise_split,
    scan_caption_folder,
)

import numpy as np
import pytest
import soundfile as sf

SR = 48000


def _wav(path, seconds=0.5, sr=16000, channels=1, freq=440.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    x = 0.5 * np.sin(2 * np.pi * freq * t)
    if channels == 2:
        x = np.stack([x, -x], axis=1)
    sf.write(path, x.astype(np.float32), sr)
    return path


def _tokenize(captions):
    """A stand-in tokenizer: character codes, padded to 16."""
    ids = np.zeros((len(captions), 16), np.int32)
    mask = np.zeros((len(captions), 16), np.int32)
    for i, c in enumerate(captions):
        codes = [ord(ch) % 1000 for ch in c[:16]]
        ids[i, : len(codes)] = codes
        mask[i, : len(codes)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def _reasons(folder):
    return {s.file: s.reason for s in folder.skipped}


@pytest.fixture
def outside(tmp_path):
    """A readable audio file outside the data folder: nothing may ever read it."""
    return _wav(tmp_path / "secret" / "outside.wav")


@pytest.fixture
def record_loads(monkeypatch):
    loaded = []

    def spy_on(name):
        real = getattr(audiotrain.audio, name)

        def spy(path, *args, **kwargs):
            loaded.append(os.path.realpath(path))
            return real(path, *args, **kwargs)

        monkeypatch.setattr(audiotrain.audio, name, spy)

    for name in ("load", "decoded_length"):  # the scan decodes through the second, a block at a time
        spy_on(name)
    return loaded


def test_side_by_side_layout_and_its_problems(tmp_path, outside, record_loads):
    root = tmp_path / "data"
    _wav(root / "train" / "a.wav")
    (root / "train" / "a.txt").write_text("a sine tone\n\n  a pure beep  \n")
    _wav(root / "train" / "b.flac", sr=22050, channels=2)
    (root / "train" / "b.txt").write_text("a stereo tone")
    _wav(root / "test" / "c.wav", sr=44100)
    (root / "test" / "c.txt").write_text("held out")
    _wav(root / "nocap.wav")
    _wav(root / "empty.wav")
    (root / "empty.txt").write_text("  \n\n")
    (root / "orphan.txt").write_text("no audio for me")
    _wav(root / "dup.wav")
    _wav(root / "dup.flac")
    (root / "dup.txt").write_text("which one?")
    os.symlink(outside, root / "link.wav")
    (root / "link.txt").write_text("a link out of the folder")
    (root / "broken.wav").write_bytes(b"RIFF not really a wav file")
    (root / "broken.txt").write_text("garbage")

    folder = scan_caption_folder(root, sampling_rate=SR)

    names = {c.name: c for c in folder.clips}
    assert sorted(names) == ["test/c.wav", "train/a.wav", "train/b.flac"]
    assert names["train/a.wav"].captions == ("a sine tone", "a pure beep")
    assert names["train/a.wav"].split == "train" and names["test/c.wav"].split == "test"
    # Resampled to 48 kHz: 0.5 s at any input rate is 24000 samples.
    assert all(abs(c.num_samples - SR // 2) <= 2 for c in folder.clips)
    reasons = _reasons(folder)
    assert "missing caption" in reasons["nocap.wav"]
    assert "empty caption" in reasons["empty.wav"]
    assert "without a matching audio" in reasons["orphan.txt"]
    assert "ambiguous" in reasons["dup.wav"] and "ambiguous" in reasons["dup.flac"]
    assert "escapes the data folder" in reasons["link.wav"]
    assert "unreadable audio" in reasons["broken.wav"]
    assert str(outside) not in record_loads and str(root / "train" / "a.wav") in record_loads
    report = folder.report()
    assert "3 clips" in report and "skipped 7" in report and "broken.wav" in report


def test_jsonl_metadata_with_bad_rows(tmp_path, outside, record_loads):
    root = tmp_path / "data"
    _wav(root / "clips" / "x.wav")
    _wav(root / "clips" / "y.wav", sr=8000)
    _wav(root / "clips" / "unlisted.wav")
    os.symlink(outside, root / "clips" / "sneaky.wav")
    rows = [
        {
            "file_name": "clips/x.wav",
            "caption": ["dog barks", "a dog barking"],
            "split": "train",
            "label": "dog",
        },
        {"file_name": "clips/x.wav", "caption": "a loud dog", "split": "train", "label": "dog"},
        {"file_name": "clips/y.wav", "caption": "rain on a roof", "split": "Val", "label": "rain"},
        {"file_name": "../secret/outside.wav", "caption": "escape"},
        {"file_name": str(outside), "caption": "absolute"},
        {"file_name": "clips/sneaky.wav", "caption": "symlink out"},
        {"file_name": "clips/missing.wav", "caption": "not there"},
        {"file_name": "clips/y.wav", "caption": "   "},
        {"file_name": "clips/x.wav", "caption": "other split", "split": "test"},
        {"caption": "no file name"},
        {"file_name": "clips/y.wav"},
    ]
    lines = [json.dumps(r) for r in rows]
    lines.insert(3, "{not json")
    (root / "metadata.jsonl").write_text("\n".join(lines) + "\n")

    folder = scan_caption_folder(root, sampling_rate=SR)

    clips = {c.name: c for c in folder.clips}
    assert sorted(clips) == ["clips/x.wav", "clips/y.wav"]
    assert clips["clips/x.wav"].captions == ("dog barks", "a dog barking", "a loud dog")
    assert clips["clips/y.wav"].split == "validation" and clips["clips/y.wav"].label == "rain"
    assert folder.splits == ["train", "validation"]
    assert [c.name for c in folder.split("val")] == ["clips/y.wav"]
    assert folder.unlisted_audio == ["clips/unlisted.wav"]
    reasons = [str(s) for s in folder.skipped]
    expect = {
        "metadata.jsonl:4": "not valid JSON",
        "metadata.jsonl:5 (../secret/outside.wav)": "escapes the data folder ('..')",
        f"metadata.jsonl:6 ({outside})": "absolute path",
        "metadata.jsonl:7 (clips/sneaky.wav)": "a symlink to",
        "metadata.jsonl:8 (clips/missing.wav)": "file listed but absent",
        "metadata.jsonl:9 (clips/y.wav)": "empty caption",
        "metadata.jsonl:10 (clips/x.wav)": "conflicting split",
        "metadata.jsonl:11": "no 'file_name'",
        "metadata.jsonl:12 (clips/y.wav)": "missing caption",
    }
    for where, cause in expect.items():
        assert any(r.startswith(where + ":") and cause in r for r in reasons), (where, reasons)
    assert len(folder.skipped) == len(expect)
    assert str(outside) not in record_loads
    with pytest.raises(CaptionFolderError, match="no clips in split 'test'"):
        folder.split("test")


def test_csv_metadata_clotho_columns(tmp_path):
    root = tmp_path / "data"
    _wav(root / "a.wav")
    _wav(root / "b.wav")
    (root / "metadata.csv").write_text(
        "file_name,caption_1,caption_2,caption_3\n"
        'a.wav,"a bell rings, twice",a bell,\n'
        "b.wav,,,\n"
        "..\\evil.wav,x,y,z\n"
        "a.wav,one,two,three,four\n"
    )
    folder = scan_caption_folder(root)
    assert [c.captions for c in folder.clips] == [("a bell rings, twice", "a bell")]
    reasons = [str(s) for s in folder.skipped]
    assert any(r.startswith("metadata.csv:3 (b.wav)") and "empty caption" in r for r in reasons)
    assert any(r.startswith("metadata.csv:4") and "escapes" in r for r in reasons)
    assert any(r.startswith("metadata.csv:5") and "5 cells but 4 columns" in r for r in reasons)


def test_a_row_with_too_many_cells_names_its_file_which_is_not_called_unlisted(tmp_path):
    """A caption with an unquoted comma: the skip names the row's file and says to quote the cell, and the
    file is not reported as "not named in the metadata" (the metadata names it, on the skipped line)."""
    root = tmp_path / "data"
    _wav(root / "a.wav")
    _wav(root / "dog.wav")
    (root / "metadata.csv").write_text("file_name,caption\na.wav,a bell\ndog.wav,a dog, barking\n")
    folder = scan_caption_folder(root)
    assert [str(s) for s in folder.skipped] == [
        "metadata.csv:3 (dog.wav): more cells than columns: 3 cells but 2 columns; a cell holding the "
        "delimiter ',' must be in double quotes"
    ]
    assert folder.unlisted_audio == []
    report = folder.report()
    assert "not named in the metadata" not in report
    # The count line names the cause once (it read "skipped 1: 1 3 cells but 2 columns; a cell ...").
    assert "  skipped 1: 1 more cells than columns\n" in report


@pytest.mark.parametrize(
    "rows, expected",
    [
        # the file ends inside the quote: every later row would be one caption of c.wav
        (
            'c.wav,"a caption whose quote is never closed\nd.wav,dogs\ne.wav,rain\n',
            r"metadata.csv:4: the file ends",
        ),
        # a later quote closes it, text follows: the rows between would be swallowed
        ('c.wav,"open\nd.wav,dogs\ne.wav,"rain"\n', r"metadata.csv:4: a quoted cell goes on after"),
        # a later quote closes it at a row's end: the cell holds what read like rows
        (
            'c.wav,"open\nd.wav,dogs\ne.wav,x,"\n',
            r"metadata.csv:4: the quoted 'caption' cell runs over lines 4-6",
        ),
    ],
)
def test_csv_quote_left_open_is_an_error_naming_its_line(tmp_path, rows, expected):
    root = tmp_path / "data"
    for name in "abcde":
        _wav(root / f"{name}.wav")
    (root / "metadata.csv").write_text("file_name,caption\na.wav,one\nb.wav,two\n" + rows)
    with pytest.raises(CaptionFolderError, match=expected):
        scan_caption_folder(root)


def test_the_data_report_shows_control_characters_in_file_names_escaped(tmp_path):
    """A clip named with ESC or BEL (a folder from someone else) recoloured the terminal and rang it where the
    data report listed it: it is shown escaped, as repr writes it."""
    root = tmp_path / "data"
    for name in ["a", "b\x1b[2J\x1b[31mRED\x07"]:
        _wav(root / f"{name}.wav")
    (root / "metadata.csv").write_text("file_name,caption\na.wav,a bell\n")
    report = scan_caption_folder(root).report()
    assert "\x1b" not in report and "\x07" not in report
    assert "not named in the metadata (ignored): b\\x1b[2J\\x1b[31mRED\\x07.wav" in report


def test_csv_caption_over_lines_and_unlisted_audio_named(tmp_path):
    """A quoted caption with a line break (no row inside it) is read; audio the metadata leaves out is
    named."""
    root = tmp_path / "data"
    for name in ["a", *(f"left{i}" for i in range(7))]:
        _wav(root / f"{name}.wav")
    (root / "metadata.csv").write_text('file_name,caption\na.wav,"a bell,\nthen silence"\n')
    folder = scan_caption_folder(root)
    assert [c.captions for c in folder.clips] == [("a bell,\nthen silence",)]
    assert (
        "7 audio files in the folder are not named in the metadata (ignored): left0.wav, left1.wav, "
        "left2.wav, left3.wav, left4.wav and 2 more" in folder.report()
    )
    rows = "".join(f"{name}.wav,a bell\n" for name in ["a", *(f"left{i}" for i in range(6))])
    (root / "metadata.csv").write_text("file_name,caption\n" + rows)
    report = scan_caption_folder(root).report()  # it said "1 audio file(s) ... are"
    assert "(metadata.csv): 7 clips, 7 captions\n  1 audio file in the folder is not named" in report
    (root / "metadata.csv").write_text("file_name,caption\na.wav,a bell\n")
    for i in range(7):
        (root / f"left{i}.wav").unlink()
    assert "(metadata.csv): 1 clip, 1 caption" in scan_caption_folder(root).report()  # was "1 clips"


def test_folder_level_errors(tmp_path):
    with pytest.raises(CaptionFolderError, match="not a folder"):
        scan_caption_folder(tmp_path / "nope")
    root = tmp_path / "data"
    root.mkdir()
    (root / "metadata.csv").write_text("path,text\nx.wav,hello\n")
    with pytest.raises(CaptionFolderError, match=r"line 1: the header needs 'file_name'.*\['path', 'text'\]"):
        scan_caption_folder(root)
    (root / "metadata.jsonl").write_text("")
    with pytest.raises(CaptionFolderError, match="both"):
        scan_caption_folder(root)
    (root / "metadata.csv").unlink()
    (root / "metadata.jsonl").write_text(json.dumps({"file_name": "gone.wav", "caption": "x"}) + "\n")
    with pytest.raises(CaptionFolderError, match="(?s)no usable captioned clips.*gone.wav.*absent"):
        scan_caption_folder(root)


def test_symlinked_sub_folders_are_entered_once_and_those_leading_out_are_skipped_and_listed(tmp_path):
    """A linked album was passed over without a word, and a link to a clip (c1_again.wav -> c1.wav) made one
    recording two clips, which a split could train on and score at once."""
    root, library = tmp_path / "data", tmp_path / "library"
    for folder, name in ((root, "c1"), (root, "c2"), (root / ".kept", "h1"), (library / "album", "l1")):
        _wav(folder / f"{name}.wav")
        (folder / f"{name}.txt").write_text(f"caption of {name}")
    (root / "c1_again.wav").symlink_to("c1.wav")
    (root / "c1_again.txt").symlink_to("c1.txt")
    (root / "linked_album").symlink_to(library / "album")  # out of the folder: nothing there is read
    (root / "again").symlink_to(root)  # a loop: the folder is read once
    (root / "shown").symlink_to(".kept")  # a hidden folder made visible by a link: entered
    folder = scan_caption_folder(root)
    assert [c.name for c in folder.clips] == ["c1.wav", "c2.wav", "shown/h1.wav"]
    reasons = _reasons(folder)
    assert (
        reasons["c1_again.wav"]
        == "reached through a symlink, not used: the same file as c1.wav, a clip already"
    )
    assert reasons["linked_album/"].startswith(
        f"folder is a symlink out of the data folder (to {library.resolve() / 'album'}): not entered"
    )
    report = folder.report()
    assert (
        "skipped 2: 1 reached through a symlink, not used, 1 folder is a symlink out of the data folder"
        in report
    )
    assert "1 folder reached through a symlink not entered: its real folder was read already" in report
    assert f"again -> {root.resolve()}" in report
    # The metadata layout reads no file through the linked album either, and names it.
    (root / "metadata.csv").write_text("file_name,caption\nc1.wav,one\nlinked_album/l1.wav,out\n")
    folder = scan_caption_folder(root)
    reasons = _reasons(folder)
    assert "escapes the data folder" in reasons["metadata.csv:3 (linked_album/l1.wav)"]
    assert "folder is a symlink out of the data folder" in reasons["linked_album/"]
    assert folder.unlisted_audio == ["c2.wav", "shown/h1.wav"]  # (c1_again.wav is c1.wav, which is listed)


def test_hidden_files_left_out_are_counted_in_the_report_unless_a_clip_is_read_from_them(tmp_path):
    """A clip named .intro.wav (with .intro.txt), an AppleDouble ._c1.wav and .DS_Store were passed over
    without a word in the data report, where the chord recipe's scan counts hidden files in one line."""
    root = tmp_path / "data"
    for name in ("c1", "c2", ".intro"):
        _wav(root / f"{name}.wav")
        (root / f"{name}.txt").write_text(f"caption of {name}")
    (root / "._c1.wav").write_bytes(b"\x00\x05\x16\x07" + bytes(80))
    (root / ".DS_Store").write_bytes(bytes(64))
    folder = scan_caption_folder(root)
    assert [c.name for c in folder.clips] == ["c1.wav", "c2.wav"]
    assert (
        "note: 4 hidden files and folders ignored (names starting with '.': .DS_Store, ._c1.wav, .intro.txt, "
        "...)" in folder.report()
    )
    # A metadata row naming the hidden clip reads it: it is no longer counted as ignored.
    (root / "metadata.csv").write_text("file_name,caption\nc1.wav,one\n.intro.wav,the intro\n")
    folder = scan_caption_folder(root)
    assert [c.name for c in folder.clips] == ["c1.wav", ".intro.wav"]
    assert (
        "3 hidden files and folders ignored (names starting with '.': .DS_Store, ._c1.wav, .intro.txt)"
        in (folder.report())
    )


def test_metadata_rows_naming_one_clip_by_two_paths_merge_with_a_note_naming_both(tmp_path):
    """Rows naming c1.wav and c1_again.wav (a link to it), or sub/c2.wav and sublink/c2.wav (a linked folder),
    merged their captions into one clip without a word in the data report."""
    root = tmp_path / "data"
    _wav(root / "c1.wav")
    _wav(root / "sub" / "c2.wav")
    (root / "c1_again.wav").symlink_to("c1.wav")
    (root / "sublink").symlink_to("sub")
    rows = [("c1.wav", "a"), ("c1_again.wav", "b"), ("sub/c2.wav", "c"), ("./sub/c2.wav", "d")]
    rows += [("sublink/c2.wav", "e")]
    (root / "metadata.csv").write_text("file_name,caption\n" + "".join(f"{f},{c}\n" for f, c in rows))
    folder = scan_caption_folder(root)
    assert [(c.name, c.captions) for c in folder.clips] == [
        ("c1.wav", ("a", "b")),
        ("sub/c2.wav", ("c", "d", "e")),
    ]
    assert (
        "  note: rows naming one file under two names, their captions merged into one clip: "
        "metadata.csv:3 (c1_again.wav) = metadata.csv:2 (c1.wav), "
        "metadata.csv:6 (sublink/c2.wav) = metadata.csv:4 (sub/c2.wav)\n"
    ) in folder.report()  # (./sub/c2.wav is sub/c2.wav written otherwise: no note)


def test_a_file_listed_again_with_another_label_keeps_its_first_row_and_the_other_is_a_counted_skip(tmp_path):
    """As for another split: the second row's captions would otherwise join the clip under the first row's
    label, and zero-shot would score a clip of two classes as one."""
    root = tmp_path / "data"
    _wav(root / "a.wav")
    _wav(root / "b.wav")
    (root / "metadata.csv").write_text(
        "file_name,caption,label\na.wav,a dog barks,dog\na.wav,a cat meows,cat\nb.wav,rain falls,rain\n"
    )
    folder = scan_caption_folder(root)
    assert [(c.name, c.captions, c.label) for c in folder.clips] == [
        ("a.wav", ("a dog barks",), "dog"),
        ("b.wav", ("rain falls",), "rain"),
    ]
    assert _reasons(folder) == {
        "metadata.csv:3 (a.wav)": "conflicting label 'cat': metadata.csv:2 says 'dog' (row ignored)"
    }


def test_json_labels_are_stripped_as_csv_labels_are(tmp_path):
    """A stray space in one row's label made a second class in JSON metadata (a CSV cell is stripped): its
    zero-shot prompt was the first's, the two tied, and every clip of either was ranked below the other."""
    root = tmp_path / "data"
    for name in ("a.wav", "b.wav", "c.wav"):
        _wav(root / name)
    rows = [
        {"file_name": "a.wav", "caption": "a dog barks", "label": "dog"},
        {"file_name": "b.wav", "caption": "a dog growls", "label": "dog "},
        {"file_name": "c.wav", "caption": "rain falls", "label": "  "},
    ]
    (root / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert [c.label for c in scan_caption_folder(root).clips] == ["dog", "dog", None]


def test_metadata_symlinked_out_of_the_folder_is_refused(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    meta = tmp_path / "elsewhere.jsonl"
    meta.write_text(json.dumps({"file_name": "a.wav", "caption": "x"}) + "\n")
    os.symlink(meta, root / "metadata.jsonl")
    with pytest.raises(CaptionFolderError, match="symlink out of the data folder"):
        scan_caption_folder(root)


@pytest.mark.parametrize("name", ["metadata.csv", "metadata.tsv", "metadata.jsonl", "metadata.json"])
def test_a_metadata_name_that_is_a_folder_is_refused_naming_it(tmp_path, name):
    root = tmp_path / "data"
    _wav(root / "a.wav")
    (root / name).mkdir()
    with pytest.raises(CaptionFolderError, match=f"{name}: is a folder, expected a UTF-8 metadata file$"):
        scan_caption_folder(root)


def test_a_metadata_fifo_is_refused_without_blocking(tmp_path):
    root = tmp_path / "data"
    _wav(root / "a.wav")
    os.mkfifo(root / "metadata.csv")  # opening it to read would wait forever for a writer
    with pytest.raises(CaptionFolderError, match=r"metadata.csv: is a named pipe \(FIFO\), not a file"):
        scan_caption_folder(root)


def test_an_unreadable_metadata_file_is_refused_naming_it(tmp_path, monkeypatch):
    root = tmp_path / "data"
    _wav(root / "a.wav")
    meta = root / "metadata.csv"
    meta.write_text("file_name,caption\na.wav,x\n")
    real = Path.read_bytes

    def denied(path):  # (chmod 000 does not stop root, which the tests may run as)
        if path.name == "metadata.csv":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(CaptionFolderError, match=r"metadata.csv: cannot be read \(Permission denied\)"):
        scan_caption_folder(root)


def test_a_dangling_metadata_symlink_is_refused_not_skipped(tmp_path):
    root = tmp_path / "data"
    _wav(root / "a.wav")
    (root / "a.txt").write_text("a caption\n")  # a usable side-by-side folder, were the link ignored
    os.symlink("/nonexistent/metadata.csv", root / "metadata.csv")
    with pytest.raises(
        CaptionFolderError,
        match="metadata.csv: a symlink to /nonexistent/metadata.csv, which does not exist$",
    ):
        scan_caption_folder(root)
    (root / "metadata.csv").unlink()
    os.symlink("metadata.csv", root / "metadata.csv")  # a loop
    with pytest.raises(
        CaptionFolderError, match="metadata.csv: a symlink to metadata.csv, which cannot be followed"
    ):
        scan_caption_folder(root)


def test_jsonl_file_name_must_be_a_string(tmp_path):
    root = tmp_path / "data"
    _wav(root / "a.wav")
    rows = [
        {"file_name": None, "caption": "x"},
        {"file_name": 7, "caption": "y"},
        {"file_name": "a.wav", "caption": "z"},
    ]
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    reasons = _reasons(scan_caption_folder(root))
    expected = "file_name must be a string (a path relative to the data folder), got "
    assert reasons == {"metadata.jsonl:1": expected + "null", "metadata.jsonl:2": expected + "7"}


def test_jsonl_label_or_split_that_is_a_list_or_an_object_is_skipped_not_read_as_its_repr(tmp_path):
    """A label ["dog", "bark"] was the class "['dog', 'bark']" (Python's str() of the list), a zero-shot class
    of its own; a split {"name": "test"} the split "{'name': 'test'}". A number stays one, as a CSV cell."""
    root = tmp_path / "data"
    for name in "abcde":
        _wav(root / f"{name}.wav")
    rows = [
        {"file_name": "a.wav", "caption": "x", "label": ["dog", "bark"]},
        {"file_name": "b.wav", "caption": "x", "label": True},
        {"file_name": "c.wav", "caption": "x", "split": {"name": "test"}},
        {"file_name": "d.wav", "caption": "x", "label": 3, "split": "train"},
        {"file_name": "e.wav", "caption": "x", "label": "dog"},
    ]
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    folder = scan_caption_folder(root)
    assert _reasons(folder) == {
        "metadata.jsonl:1 (a.wav)": 'label must be a string (a class name), got ["dog", "bark"]',
        "metadata.jsonl:2 (b.wav)": "label must be a string (a class name), got true",
        "metadata.jsonl:3 (c.wav)": 'split must be a string (a split name), got {"name": "test"}',
    }
    assert sorted((c.label, c.split) for c in folder.clips) == [("3", "train"), ("dog", None)]


def _long_folder(tmp_path):
    root = tmp_path / "data"
    for i in range(3):
        _wav(root / f"c{i}.wav", seconds=1.0 + i * 0.5, sr=16000, freq=200.0 * (i + 1))
        (root / f"c{i}.txt").write_text("\n".join(f"caption {i}.{j}" for j in range(4)))
    return scan_caption_folder(root)


def test_training_crops_and_captions_are_seeded_per_epoch(tmp_path):
    folder = _long_folder(tmp_path)
    crop = SR // 4
    ds = CaptionDataset(folder.clips, _tokenize, sampling_rate=SR, crop_samples=crop, train=True, seed=3)
    again = CaptionDataset(folder.clips, _tokenize, sampling_rate=SR, crop_samples=crop, train=True, seed=3)
    whole = ds.waveform(2)
    assert whole.dtype == np.float32 and abs(whole.shape[0] - 2 * SR) <= 2

    starts, captions = set(), set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        again.set_epoch(epoch)
        item, twin = ds[2], again[2]
        np.testing.assert_array_equal(item["waveform"], twin["waveform"])
        np.testing.assert_array_equal(item["input_ids"], twin["input_ids"])
        assert item["waveform"].shape == (crop,)
        # Locate the crop in the whole clip by matching its first samples.
        matches = np.flatnonzero(
            np.all(np.lib.stride_tricks.sliding_window_view(whole, 32) == item["waveform"][:32], axis=1)
        )
        assert matches.size >= 1
        starts.add(int(matches[0]))
        captions.add(bytes(item["input_ids"].tobytes()))
        assert item["seed"].tolist() == [3, epoch, 2, 0]
    assert len(starts) > 1, "training crops should move between epochs"
    assert len(captions) > 1, "one caption is sampled per clip per epoch"
    ds.set_epoch(0)
    other_seed = CaptionDataset(
        folder.clips, _tokenize, sampling_rate=SR, crop_samples=crop, train=True, seed=4
    )
    assert not all(np.array_equal(ds[i]["waveform"], other_seed[i]["waveform"]) for i in range(3))


def test_training_draws_every_caption_of_a_clip_over_the_epochs(tmp_path):
    """Clotho's five captions per clip: each is a training pair in some epoch, the last one too."""
    folder = _long_folder(tmp_path)  # 4 captions per clip
    ds = CaptionDataset(folder.clips, _tokenize, sampling_rate=SR, crop_samples=None, train=True, seed=3)
    drawn = set()
    for epoch in range(40):
        ds.set_epoch(epoch)
        drawn.add(ds[1]["input_ids"].tobytes())
    assert drawn == {row.tobytes() for row in _tokenize([f"caption 1.{j}" for j in range(4)])["input_ids"]}


def test_evaluation_is_deterministic_centre_crop_first_caption(tmp_path):
    folder = _long_folder(tmp_path)
    crop = SR // 2
    ds = CaptionDataset(folder.clips, _tokenize, sampling_rate=SR, crop_samples=crop, train=False)
    whole = ds.waveform(1)
    items = []
    for epoch in range(3):
        ds.set_epoch(epoch)
        items.append(ds[1])
    for item in items[1:]:
        np.testing.assert_array_equal(item["waveform"], items[0]["waveform"])
    # The front end's own random choices are drawn from `seed`: in evaluation it names no epoch.
    assert [item["seed"].tolist() for item in items] == [[0, 0, 1, 0]] * 3
    start = (whole.shape[0] - crop) // 2
    np.testing.assert_array_equal(items[0]["waveform"], whole[start : start + crop])
    first = _tokenize(["caption 1.0"])["input_ids"][0]
    np.testing.assert_array_equal(items[0]["input_ids"], first)
    # Clips shorter than the crop are returned whole (the front end pads them).
    short = CaptionDataset(folder.clips, _tokenize, sampling_rate=SR, crop_samples=10 * SR, train=True)
    assert short[0]["waveform"].shape[0] == ds.waveform(0).shape[0]
    assert ds.captions[:4] == [f"caption 0.{j}" for j in range(4)]
    assert ds.caption_to_clip.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    for index in (3, -1):  # a negative index is not the last clip, as in a list
        with pytest.raises(IndexError, match=f"clip index {index} out of range for 3 clips"):
            ds[index]


def test_each_caption_belongs_to_its_own_clip_when_clips_have_different_caption_counts(tmp_path):
    """caption_to_clip pairs every caption with its clip for the retrieval scores; clips of 1, 3 and 2
    captions (a hand-made folder, an evaluation set of uneven counts) must not shift the pairs."""
    root = tmp_path / "data"
    captions = {
        "a.wav": ["a dog barks"],
        "b.wav": ["rain", "rain on a roof", "a downpour"],
        "c.wav": ["a car", "a bus"],
    }
    for name, lines in captions.items():
        _wav(root / name)
        (root / name).with_suffix(".txt").write_text("\n".join(lines))
    ds = CaptionDataset(
        scan_caption_folder(root).clips, _tokenize, sampling_rate=SR, crop_samples=None, train=False
    )
    owners = [ds.clips[i].name for i in ds.caption_to_clip]
    assert list(zip(ds.captions, owners)) == [(c, name) for name, lines in captions.items() for c in lines]


def test_cache_audio_decodes_once(tmp_path):
    folder = _long_folder(tmp_path)
    calls = []

    def load(path, sr, mono):
        calls.append(path)
        return audiotrain.audio.load(path, sr=sr, mono=mono)

    ds = CaptionDataset(
        folder.clips, _tokenize, sampling_rate=SR, crop_samples=None, train=True, load=load, cache_audio=True
    )
    for epoch in range(3):
        ds.set_epoch(epoch)
        ds[0]
    assert len(calls) == 1


def test_cache_audio_serves_a_long_clip_from_memory_not_by_reading_its_crop(tmp_path, monkeypatch):
    """cache_audio decodes each clip once: a long clip is not read in part (load_span) every epoch."""
    root = tmp_path / "data"
    _wav(root / "a.wav", seconds=2.0)
    (root / "a.txt").write_text("a tone")
    folder = scan_caption_folder(root, sampling_rate=SR)  # its length known: long enough for span reads

    def load_span(*args, **kwargs):
        raise AssertionError("a clip of the in-memory cache was read in part")

    monkeypatch.setattr(audiotrain.audio, "load_span", load_span)
    crop = SR // 10
    ds = CaptionDataset(
        folder.clips, _tokenize, sampling_rate=SR, crop_samples=crop, train=True, cache_audio=True
    )
    for epoch in range(2):
        ds.set_epoch(epoch)
        assert ds[0]["waveform"].shape == (crop,)


def test_tokenizer_output_is_checked(tmp_path):
    folder = _long_folder(tmp_path)
    with pytest.raises(ValueError, match="12 captions"):
        CaptionDataset(
            folder.clips,
            lambda caps: {"input_ids": np.zeros((2, 4)), "attention_mask": np.zeros((2, 4))},
            sampling_rate=SR,
            crop_samples=None,
            train=True,
        )


def test_a_crop_of_no_samples_is_refused(tmp_path):
    """crop_samples=0 would give every item an empty waveform."""
    folder = _long_folder(tmp_path)
    for crop in (0, -1):
        with pytest.raises(ValueError, match=f"crop_samples must be positive or None, got {crop}"):
            CaptionDataset(folder.clips, _tokenize, sampling_rate=SR, crop_samples=crop, train=True)


def test_holdout_split_and_split_names(tmp_path):
    folder = _long_folder(tmp_path)
    train, held = holdout_split(folder.clips, 0.34, seed=1)
    assert len(held) == 1 and len(train) == 2
    assert {c.name for c in train}.isdisjoint({c.name for c in held})
    assert holdout_split(folder.clips[::-1], 0.34, seed=1) == (train, held)
    twelve = [dataclasses.replace(folder.clips[0], name=f"{i:02d}.wav") for i in range(12)]
    assert [len(part) for part in holdout_split(twelve, 0.3)] == [8, 4]  # round(3.6), as the docstring says
    assert normalise_split(" Dev ") == "validation" and normalise_split("holdout") == "holdout"
    with pytest.raises(ValueError, match="between 0 and 1"):
        holdout_split(folder.clips, 1.0)


def test_the_seed_draws_the_held_out_clips_and_at_least_one_is_held_out(tmp_path):
    """--train.seed re-draws the split (the advice a resume on other clips gives); a fraction too small for
    one clip still holds one out, so the run has a clip to evaluate on."""
    folder = _long_folder(tmp_path)
    twelve = [dataclasses.replace(folder.clips[0], name=f"{i:02d}.wav") for i in range(12)]
    held = {tuple(c.name for c in holdout_split(twelve, 0.25, seed=seed)[1]) for seed in range(5)}
    assert len(held) > 1 and all(len(names) == 3 for names in held)
    train, held = holdout_split(folder.clips, 0.05, seed=0)  # round(0.15) = 0
    assert len(held) == 1 and len(train) == 2
    # ... and a fraction too large for the folder still leaves one clip to train on.
    train, held = holdout_split(folder.clips, 0.9, seed=0)  # round(2.7) = 3 of 3
    assert len(held) == 2 and len(train) == 1


def test_demo_folder_is_usable_and_cached(tmp_path):
    config = CaptionDemoConfig(n_clips=12, min_seconds=0.3, max_seconds=0.6, seed=5)
    path = make_caption_demo(tmp_path / "demo", config)
    folder = scan_caption_folder(path, sampling_rate=SR)
    assert len(folder.clips) == 12 and not folder.skipped
    assert folder.splits == ["test", "train"] and len(folder.split("test")) == 3
    assert {c.label for c in folder.clips} <= set(LABELS)
    assert all(2 <= len(c.captions) <= 3 for c in folder.clips)
    # Loud and quiet clips really differ in level, so the captions describe the audio.
    for clip in folder.clips:
        peak = np.abs(audiotrain.audio.load(clip.path, sr=SR, mono=True)[0]).max()
        quiet = any(w in clip.captions[0].lower() for w in ("quiet", "soft", "faint"))
        assert (peak < 0.1) == quiet, (clip.captions, peak)
    stamp = (path / "metadata.jsonl").stat().st_mtime_ns
    time.sleep(0.01)
    assert make_caption_demo(path, config) == path
    assert (path / "metadata.jsonl").stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match="other parameters"):
        make_caption_demo(path, CaptionDemoConfig(n_clips=13))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="not a demo folder"):
        make_caption_demo(tmp_path / "mine", config)
    # Same parameters, same sounds, wherever they are written.
    other = make_caption_demo(tmp_path / "demo2", config)
    a = sorted(p.name for p in (path / "clips").iterdir())
    assert a == sorted(p.name for p in (other / "clips").iterdir())
    assert (path / "metadata.jsonl").read_text() == (other / "metadata.jsonl").read_text()


def _heard_attribute(label: str, x: np.ndarray, sr: int) -> str:
    """The attribute of a demo sound as its audio shows it (the module table's pitch, brightness, sweep
    direction or click rate), measured without the generator."""

    def strongest(part: np.ndarray) -> float:
        spectrum = np.abs(np.fft.rfft(part * np.hanning(part.size)))
        return float(np.fft.rfftfreq(part.size, 1 / sr)[spectrum.argmax()])

    if label in ("sine tone", "buzz"):  # 110-220 / 70-140 Hz against 880-1760 / 500-900 Hz
        return "low" if strongest(x) < 350 else "high"
    if label == "noise burst":  # low-passed at 400 Hz against high-passed at 3 kHz: most power on its side
        power = np.abs(np.fft.rfft(x)) ** 2
        freqs = np.fft.rfftfreq(x.size, 1 / sr)
        if power[freqs < 500].sum() > 0.5 * power.sum():
            return "dark"
        return "bright" if power[freqs > 2500].sum() > 0.5 * power.sum() else "neither dark nor bright"
    if label == "chirp":
        third = x.size // 3
        return "rising" if strongest(x[:third]) < strongest(x[-third:]) else "falling"
    loud = np.flatnonzero(np.abs(x) > 0.1 * np.abs(x).max())  # clicks: 3-5 against 15-25 per second
    onsets = loud[np.r_[True, np.diff(loud) > 0.02 * sr]]
    return "slow" if np.median(np.diff(onsets)) > 0.12 * sr else "fast"


def test_demo_captions_describe_the_attribute_their_audio_has(tmp_path):
    """Each caption of the demo names its clip's sound and the attribute the audio really has (a low tone is
    described as low, a falling chirp as falling): a caption of the other attribute, or audio synthesized
    with the other one's range, teaches and scores pairs that do not match."""
    from audiotrain.datasets.caption_demo import _WORDS

    def described(caption: str) -> set:
        text = caption.lower()
        return {
            key
            for key, phrases in _WORDS.items()
            for phrase in phrases
            if (phrase.partition(" ")[2] if phrase.split(" ")[0] in ("a", "an") else phrase) in text
        }

    config = CaptionDemoConfig(n_clips=20, min_seconds=1.0, max_seconds=1.5, seed=3)  # every combination
    folder = scan_caption_folder(make_caption_demo(tmp_path / "demo", config), sampling_rate=SR)
    heard = set()
    for clip in folder.clips:
        x, sr = sf.read(clip.path)
        attribute = _heard_attribute(clip.label, x if x.ndim == 1 else x.mean(axis=1), sr)
        heard.add((clip.label, attribute))
        for caption in clip.captions:
            assert described(caption) == {(clip.label, attribute)}, (clip.path.name, caption, attribute)
    assert heard == set(_WORDS)  # both attributes of every sound were made and told apart


def test_demo_set_finished_first_by_another_process_is_used(tmp_path, monkeypatch):
    """Two CLAP demo runs at once each render the set; the second to finish died on `rmdir` of the first
    one's finished folder ("OSError: Directory not empty"). It uses that set now, leaving nothing behind."""
    from audiotrain.datasets import caption_demo

    config = CaptionDemoConfig(n_clips=4, min_seconds=0.2, max_seconds=0.3, seed=1)
    folder = tmp_path / "demo" / "set"
    real_new_folder, calls = caption_demo._new_folder, []

    def other_process_finishes_first(parent, prefix):
        calls.append(prefix)
        if len(calls) == 1:  # the other run renders and installs the same set while this one renders
            make_caption_demo(folder, config)
        return real_new_folder(parent, prefix)

    monkeypatch.setattr(caption_demo, "_new_folder", other_process_finishes_first)
    assert make_caption_demo(folder, config) == folder
    assert len(calls) == 2 and sorted(p.name for p in folder.parent.iterdir()) == ["set"]
    umask = os.umask(0)
    os.umask(umask)
    assert folder.stat().st_mode & 0o777 == 0o777 & ~umask  # as any new folder: readable in a shared cache
    assert len(scan_caption_folder(folder).clips) == 4


@pytest.mark.parametrize("damage", ["empty", "truncated", "longer", "missing", "demo.json"])
def test_a_damaged_file_of_a_demo_set_is_rendered_again(tmp_path, capsys, damage):
    """A 0-byte or cut clip in a cached set was kept for good ("skipped 1: 1 unreadable audio" on every run):
    the set is generated, so a file of another size than demo.json records is rendered again, the same."""
    config = CaptionDemoConfig(n_clips=4, min_seconds=0.2, max_seconds=0.3, seed=2)
    folder = make_caption_demo(tmp_path / "set", config)
    clip = sorted((folder / "clips").iterdir())[1]
    whole = clip.read_bytes()
    if damage == "missing":
        clip.unlink()
    elif damage == "demo.json":
        clip = folder / "demo.json"
        whole = clip.read_bytes()
        clip.write_bytes(whole[:10])
    elif damage == "longer":  # bytes appended (a copy gone wrong): another size is damage too
        clip.write_bytes(whole + bytes(16))
    else:
        clip.write_bytes(whole[: 0 if damage == "empty" else len(whole) // 2])
    assert make_caption_demo(folder, config) == folder
    assert clip.read_bytes() == whole
    assert f"note: the demo set {folder} is damaged ({clip}" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]  # the damaged set is gone
    assert make_caption_demo(folder, config) == folder and capsys.readouterr().out == ""  # whole: reused


def test_a_demo_set_that_records_no_file_sizes_is_rendered_again(tmp_path, capsys):
    """A set of an earlier audiotrain (its demo.json without file sizes) cannot be checked, so it is rendered
    again rather than trusted: a cut clip in it is mended."""
    config = CaptionDemoConfig(n_clips=4, min_seconds=0.2, max_seconds=0.3, seed=2)
    folder = make_caption_demo(tmp_path / "set", config)
    record = json.loads((folder / "demo.json").read_text())
    del record["file_bytes"]
    (folder / "demo.json").write_text(json.dumps(record))
    clip = sorted((folder / "clips").iterdir())[0]
    whole = clip.read_bytes()
    clip.write_bytes(whole[: len(whole) // 2])
    assert make_caption_demo(folder, config) == folder
    assert "records no file sizes" in capsys.readouterr().out
    assert clip.read_bytes() == whole and "file_bytes" in json.loads((folder / "demo.json").read_text())


def test_demo_set_names_hold_the_generator_version_and_a_hash_of_every_parameter(monkeypatch):
    from audiotrain.datasets import caption_demo

    config = CaptionDemoConfig(n_clips=12, seed=42)
    name = caption_demo.demo_set_name(config)
    assert (
        name.startswith(f"caption_demo-v{caption_demo.DEMO_VERSION}-n12-seed42-")
        and len(name.split("-")[-1]) == 8
    )
    assert caption_demo.demo_set_name(CaptionDemoConfig(n_clips=12, seed=42, eval_fraction=0.5)) != name
    monkeypatch.setattr(caption_demo, "DEMO_VERSION", caption_demo.DEMO_VERSION + 1)
    other = caption_demo.demo_set_name(config)
    assert other != name and other.startswith(f"caption_demo-v{caption_demo.DEMO_VERSION}-n12-seed42-")


def test_a_folder_with_a_demo_json_that_is_not_json_and_other_files_is_refused_not_replaced(tmp_path):
    """A damaged demo set (its demo.json not JSON) is rendered again only when the folder holds nothing but a
    set's files: a user's folder with such a demo.json beside their own files is refused and left as it was,
    never moved aside and deleted."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "demo.json").write_text("{ my notes, not json")
    (mine / "notes.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="other parameters"):
        make_caption_demo(mine, CaptionDemoConfig(n_clips=4, min_seconds=0.2, max_seconds=0.3))
    assert sorted(p.name for p in mine.iterdir()) == ["demo.json", "notes.txt"]
    assert (mine / "notes.txt").read_text() == "user data"
    assert (mine / "demo.json").read_text() == "{ my notes, not json"


def test_another_seed_makes_another_demo_set(tmp_path):
    """The seed draws the set: another seed gives other clips and captions (the same seed the same set)."""
    sets = [
        make_caption_demo(
            tmp_path / f"seed{seed}",
            CaptionDemoConfig(n_clips=6, min_seconds=0.2, max_seconds=0.3, seed=seed),
        )
        for seed in (5, 6)
    ]
    assert (sets[0] / "metadata.jsonl").read_text() != (sets[1] / "metadata.jsonl").read_text()
    first = [sorted((s / "clips").iterdir())[0].read_bytes() for s in sets]
    assert first[0] != first[1]


def test_demo_set_mixes_sample_rates_channels_formats_lengths_and_caption_counts(tmp_path):
    """What the demo promises to exercise: 16 and 22.05 kHz, mono and stereo, WAV and FLAC files, durations
    spread over [min_seconds, max_seconds], and two or three distinct, grammatical captions per clip."""
    config = CaptionDemoConfig(n_clips=40, min_seconds=0.3, max_seconds=0.6, seed=4)
    folder = make_caption_demo(tmp_path / "demo", config)
    infos = [sf.info(p) for p in sorted((folder / "clips").iterdir())]
    assert {i.samplerate for i in infos} == {16000, 22050}
    assert {i.channels for i in infos} == {1, 2}
    assert {Path(i.name).suffix for i in infos} == {".wav", ".flac"}
    durations = [i.frames / i.samplerate for i in infos]
    assert all(0.3 - 1e-4 <= d <= 0.6 + 1e-4 for d in durations)
    assert max(durations) - min(durations) > 0.15
    rows = [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]
    assert {len(r["caption"]) for r in rows} == {2, 3}
    for row in rows:
        assert len(set(row["caption"])) == len(row["caption"]), row
        assert not any(re.search(r"\ba [aeiou]", c.lower()) for c in row["caption"]), row  # "an intense …"


@pytest.mark.parametrize("eval_fraction", [0.1, 0.9])
def test_a_two_clip_demo_set_holds_a_train_and_a_test_clip_whatever_the_fraction(tmp_path, eval_fraction):
    config = CaptionDemoConfig(n_clips=2, eval_fraction=eval_fraction, min_seconds=0.2, max_seconds=0.3)
    folder = make_caption_demo(tmp_path / "demo", config)
    rows = [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]
    assert sorted(r["split"] for r in rows) == ["test", "train"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"n_clips": 1}, "n_clips"),
        ({"eval_fraction": 1.0}, "eval_fraction"),
        ({"eval_fraction": 0.0}, "eval_fraction"),
        ({"min_seconds": 2.0, "max_seconds": 1.0}, "min_seconds"),
    ],
)
def test_demo_settings_that_cannot_make_a_set_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        CaptionDemoConfig(**settings)


@pytest.mark.parametrize("name", ["metadata.csv", "metadata.jsonl"])
def test_metadata_that_is_not_utf8_names_the_file_and_line(tmp_path, name):
    root = tmp_path / "data"
    _wav(root / "a.wav")
    if name == "metadata.csv":
        text = "file_name,caption\na.wav,a caf\xe9 with chatter\n"
    else:
        text = (
            json.dumps({"file_name": "a.wav", "caption": "x"})
            + "\n"
            + '{"file_name": "a.wav", "caption": "caf\xe9"}\n'
        )
    (root / name).write_bytes(text.encode("latin-1"))
    with pytest.raises(CaptionFolderError, match=rf"{name}, line 2: the byte 0xe9 .* must be saved as UTF-8"):
        scan_caption_folder(root)
    # UTF-8 with a BOM (Excel's "CSV UTF-8") is fine.
    (root / name).write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert any("caf\xe9" in c for c in scan_caption_folder(root).clips[0].captions)
    # Saved as UTF-16 (Windows PowerShell 5's `>`): said so, not "the byte 0xff ... is not UTF-8".
    (root / name).write_bytes(text.encode("utf-16"))
    with pytest.raises(CaptionFolderError, match=rf"{name}: a UTF-16 text file .* save it as UTF-8"):
        scan_caption_folder(root)


def test_a_caption_file_saved_as_utf16_is_skipped_saying_so(tmp_path):
    root = tmp_path / "data"
    for name in ("a", "b"):
        _wav(root / f"{name}.wav")
    (root / "a.txt").write_text("a tone")
    (root / "b.txt").write_bytes("a bell".encode("utf-16"))
    reasons = _reasons(scan_caption_folder(root, sampling_rate=SR))
    assert "caption file is a UTF-16 text file" in reasons["b.txt"], reasons


def test_a_caption_file_saved_as_latin1_is_skipped_naming_its_line_and_byte(tmp_path):
    """A Portuguese caption saved by an editor as Windows-1252 ('água para o café') was skipped as "caption
    file is not UTF-8 text", saying neither where nor what to do, where the chord recipe's .lab and the
    metadata files name the line, the byte and the likely encoding."""
    root = tmp_path / "data"
    for name in ("a", "café"):
        _wav(root / f"{name}.wav")
    (root / "a.txt").write_text("a tone")
    (root / "café.txt").write_bytes("sino da igreja\nágua para o café\n".encode("cp1252"))
    reasons = _reasons(scan_caption_folder(root, sampling_rate=SR))
    assert reasons["café.txt"] == (
        "caption file, line 2: not a UTF-8 text file (byte 0xe1 is not UTF-8; saved as Latin-1 or "
        "Windows-1252? save it as UTF-8)"
    ), reasons


@pytest.mark.parametrize(
    "name, text",
    [
        ("metadata.tsv", "file_name\tcaption\tsplit\na.wav\ta bell, ringing\ttrain\n"),
        ("metadata.csv", "file_name;caption;split\na.wav;a bell, ringing;train\n"),
        ("metadata.csv", "file_name\tcaption\tsplit\na.wav\ta bell, ringing\ttrain\n"),
        ("metadata.csv", 'File_Name,Caption,Split\na.wav,"a bell, ringing",train\n'),
        ("metadata.csv", 'file_name,text,split\na.wav,"a bell, ringing",train\n'),
        (
            "metadata.json",
            json.dumps([{"file_name": "a.wav", "caption": ["a bell, ringing"], "split": "train"}]),
        ),
        (
            "metadata.jsonl",
            json.dumps({"File_Name": "a.wav", "text": "a bell, ringing", "Split": "train"}) + "\n",
        ),
    ],
)
def test_common_metadata_formats(tmp_path, name, text):
    """TSV, JSON arrays, semicolon/tab-separated CSV, AudioFolder's `text` column, case-insensitive names."""
    root = tmp_path / "data"
    _wav(root / "a.wav")
    (root / name).write_text(text)
    folder = scan_caption_folder(root)
    assert [(c.name, c.captions, c.split) for c in folder.clips] == [("a.wav", ("a bell, ringing",), "train")]
    assert folder.layout == name and not folder.skipped


@pytest.mark.parametrize("name, delimiter", [("metadata.csv", ","), ("metadata.tsv", "\t")])
def test_csv_metadata_with_cr_or_crlf_line_endings_reads_as_with_lf(tmp_path, name, delimiter):
    """Excel for Mac's "CSV (Macintosh)" ends lines with a lone CR (it was a raw `_csv.Error` traceback), and
    Windows tools with CRLF: each scans to the clips, captions, splits and skipped lines the LF file gives, a
    line break inside a quoted caption included."""
    root = tmp_path / "data"
    for stem in "abc":
        _wav(root / f"{stem}.wav")
    rows = [
        ["file_name", "caption", "split"],
        ["a.wav", '"a bell,\nthen silence"', "train"],
        ["b.wav", "a dog", "test"],
        ["c.wav", "", "train"],  # an empty caption: a skip naming line 5 (the quoted caption spans 2-3)
    ]
    lf = "".join(delimiter.join(row) + "\n" for row in rows)

    def scanned(text):
        (root / name).write_bytes(text.encode())
        folder = scan_caption_folder(root)
        return [(c.name, c.captions, c.split) for c in folder.clips], [str(s) for s in folder.skipped]

    expected = scanned(lf)
    assert expected[0] == [("a.wav", ("a bell,\nthen silence",), "train"), ("b.wav", ("a dog",), "test")]
    assert [s.split(":", 2)[:2] for s in expected[1]] == [[name, "5 (c.wav)"]]
    assert scanned(lf.replace("\n", "\r")) == expected
    assert scanned(lf.replace("\n", "\r\n")) == expected


def test_csv_metadata_header_the_csv_reader_cannot_read_names_the_file_and_line(tmp_path):
    """A header cell over `csv.field_size_limit()` (128 KB) was a raw `_csv.Error` from the delimiter
    guess."""
    root = tmp_path / "data"
    _wav(root / "a.wav")
    (root / "metadata.csv").write_text("file_name," + "x" * (csv.field_size_limit() + 1) + "\na.wav,a bell\n")
    with pytest.raises(CaptionFolderError, match=r"metadata.csv:1: not valid CSV \(field larger"):
        scan_caption_folder(root)


def test_metadata_json_problems(tmp_path):
    root = tmp_path / "data"
    _wav(root / "a.wav")
    meta = root / "metadata.json"
    meta.write_text(
        json.dumps({"file_name": "a.wav", "caption": "x"}) + "\n" + json.dumps({"file_name": "a.wav"})
    )
    with pytest.raises(
        CaptionFolderError, match=r"metadata.json: not valid JSON at line 2.*name the file metadata.jsonl"
    ):
        scan_caption_folder(root)
    meta.write_text(json.dumps({"file_name": ["a.wav"], "caption": ["x"]}))
    with pytest.raises(CaptionFolderError, match="expected a JSON array of objects.*got a JSON dict"):
        scan_caption_folder(root)
    meta.write_text(
        json.dumps(
            [{"file_name": "a.wav", "caption": "x"}, "oops", {"file_name": "gone.wav", "caption": "y"}]
        )
    )
    reasons = [str(s) for s in scan_caption_folder(root).skipped]
    assert reasons == [
        "metadata.json item 2: expected a JSON object, got str",
        "metadata.json item 3 (gone.wav): file listed but absent",
    ]
    (root / "metadata.tsv").write_text("file_name\tcaption\n")
    with pytest.raises(CaptionFolderError, match="both metadata.json and metadata.tsv"):
        scan_caption_folder(root)


def test_metadata_like_files_that_are_not_read_are_named_in_the_report(tmp_path):
    """A misnamed metadata file used to pass silently: the folder fell back to side-by-side .txt captions."""
    root = tmp_path / "data"
    _wav(root / "a.wav")
    (root / "a.txt").write_text("a tone")
    (root / "captions.csv").write_text("file_name,caption\na.wav,a tone\n")
    (root / "Metadata.parquet").write_bytes(b"PAR1")
    report = scan_caption_folder(root).report()
    assert (
        "note: not read: Metadata.parquet, captions.csv. Captions come from .txt files beside the audio"
        in report
    )
    assert "metadata.jsonl, metadata.json, metadata.csv, metadata.tsv" in report
    (root / "metadata.csv").write_text("file_name,caption\na.wav,a tone\n")
    report = scan_caption_folder(root).report()
    assert (
        "note: not read: Metadata.parquet, captions.csv (the captions come from metadata.csv only)" in report
    )
    (root / "captions.csv").unlink()
    (root / "Metadata.parquet").unlink()
    assert "note" not in scan_caption_folder(root).report()


def test_names_in_another_unicode_form_than_on_disk_are_found(tmp_path):
    """macOS writes 'Café' decomposed (NFD); metadata.csv or a caption file typed elsewhere is composed
    (NFC): the row was 'file listed but absent' and the audio 'not named in the metadata'."""
    composed = "Café Olé"
    on_disk = unicodedata.normalize("NFD", composed)
    listed = tmp_path / "listed"
    _wav(listed / "plain.wav")
    _wav(listed / f"{on_disk}.wav")
    (listed / "metadata.csv").write_text(f"file_name,caption\nplain.wav,a tone\n{composed}.wav,a cafe\n")
    folder = scan_caption_folder(listed)
    assert sorted(c.name for c in folder.clips) == sorted(["plain.wav", f"{on_disk}.wav"])
    assert not folder.skipped and not folder.unlisted_audio
    side = tmp_path / "side"
    _wav(side / f"{on_disk}.wav")
    (side / f"{composed}.txt").write_text("a cafe")
    folder = scan_caption_folder(side)
    assert [(c.name, c.captions) for c in folder.clips] == [(f"{on_disk}.wav", ("a cafe",))]
    assert not folder.skipped


def test_a_name_listed_in_another_letter_case_than_on_disk_is_named_in_its_skip(tmp_path):
    """metadata.csv written on macOS or Windows (file systems that ignore case) lists car.WAV for car.wav:
    on Linux the row is skipped, and the skip names the file the user meant."""
    root = tmp_path / "data"
    _wav(root / "sounds" / "car.wav")
    _wav(root / "bell.wav")
    (root / "metadata.csv").write_text(
        "file_name,caption\nSounds/car.WAV,a car\nbell.wav,a bell\ndog.wav,x\n"
    )
    if (root / "Sounds" / "car.WAV").exists():
        pytest.skip("this file system ignores letter case (macOS, Windows): the row finds its file")
    folder = scan_caption_folder(root)
    assert [c.name for c in folder.clips] == ["bell.wav"]
    assert [str(s) for s in folder.skipped] == [
        "metadata.csv:2 (Sounds/car.WAV): file listed but absent; the folder has sounds/car.wav: names are "
        "case-sensitive here",
        "metadata.csv:4 (dog.wav): file listed but absent",
    ]


def test_a_caption_file_in_another_letter_case_pairs_alike_on_every_file_system(tmp_path, monkeypatch):
    """Rain.wav beside rain.txt: on Linux "missing caption (no Rain.txt next to it)" without a word of
    rain.txt; on macOS (a file system that ignores case) Rain.txt opened rain.txt, so the clip paired there,
    and rain.txt was reported as well as "caption file without a matching audio file". The same folder now
    scans alike on both, naming the other spelling on each side."""
    root = tmp_path / "data"
    _wav(root / "Rain.wav")
    _wav(root / "bell.wav")
    (root / "rain.txt").write_text("rain falls")
    (root / "bell.txt").write_text("a bell")
    expected = [
        "Rain.wav: missing caption (no Rain.txt next to it; rain.txt differs in letter case only: rename it)",
        "rain.txt: caption file without a matching audio file (Rain.wav differs in letter case only)",
    ]
    folder = scan_caption_folder(root)
    assert [c.name for c in folder.clips] == ["bell.wav"]
    assert sorted(str(s) for s in folder.skipped) == expected
    real_exists = Path.exists

    def exists_ignoring_case(self, *args, **kwargs):  # (as on macOS, Windows and exFAT)
        if real_exists(self, *args, **kwargs):
            return True
        try:
            return any(name.casefold() == self.name.casefold() for name in os.listdir(self.parent))
        except OSError:
            return False

    monkeypatch.setattr(Path, "exists", exists_ignoring_case)
    folder = scan_caption_folder(root)
    assert [c.name for c in folder.clips] == ["bell.wav"]
    assert sorted(str(s) for s in folder.skipped) == expected


def test_clips_shorter_than_the_minimum_are_skipped_as_too_short(tmp_path):
    """A 1-sample and a 5 ms clip trained as 10 s of DC or buzz against their captions, without a word."""
    root = tmp_path / "data"
    # "edge" is exactly MIN_CLIP_SECONDS (1600 samples at 16 kHz): long enough, under both checks.
    clips = (("long", 0.5), ("edge", MIN_CLIP_SECONDS), ("ms5", 0.005), ("one_sample", 1 / 16000))
    for name, seconds in clips:
        _wav(root / f"{name}.wav", seconds=seconds)
        (root / f"{name}.txt").write_text(f"the {name} clip")
    for check in ("headers", "decoded"):
        folder = scan_caption_folder(root, sampling_rate=SR if check == "decoded" else None)
        if check == "headers":
            folder.check_headers()
        assert [c.name for c in folder.clips] == ["edge.wav", "long.wav"], check
        reasons = _reasons(folder)
        assert reasons["ms5.wav"] == f"too short (5 ms; a clip needs at least {MIN_CLIP_SECONDS:g} s)"
        assert reasons["one_sample.wav"].startswith("too short (0.0625 ms")
        assert "skipped 2: 2 too short" in folder.report()


def test_rejected_audio_in_a_metadata_file_names_its_line(tmp_path):
    """Absent files and escaping paths were named 'metadata.csv:LINE (x.wav)'; unreadable audio only
    'x.wav'."""
    root = tmp_path / "data"
    _wav(root / "good.wav")
    _wav(root / "good2.wav")
    (root / "nan.wav").write_text("not audio at all\n")
    (root / "metadata.csv").write_text("file_name,caption\ngood.wav,a\ngood2.wav,b\nnan.wav,c\n")
    folder = scan_caption_folder(root, sampling_rate=SR)
    assert [c.listed_at for c in folder.clips] == ["metadata.csv:2", "metadata.csv:3"]
    assert list(_reasons(folder)) == ["metadata.csv:4 (nan.wav)"]
    assert _reasons(folder)["metadata.csv:4 (nan.wav)"].startswith("unreadable audio")


def test_a_long_clip_is_read_only_where_its_crop_lies(tmp_path, monkeypatch):
    """Every crop of an hour-long clip decoded and resampled the whole hour (14x the memory of a folder of
    short clips, every epoch). Now only the crop is read: the same crop (to float32 rounding) from the same
    seeded draw; short clips are read whole, exactly as before."""
    root = tmp_path / "data"
    _wav(root / "long.flac", seconds=30.0, freq=330.0)
    _wav(root / "short.wav", seconds=0.5)
    for name in ("long", "short"):
        (root / f"{name}.txt").write_text(f"the {name} clip\n")
    folder = scan_caption_folder(root, sampling_rate=SR)
    reads = []
    real = audiotrain.audio.load

    def spy(path, *args, **kwargs):
        reads.append((os.path.basename(path), kwargs.get("duration")))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(audiotrain.audio, "load", spy)
    crop = SR // 4
    whole = {c.name: real(c.path, sr=SR)[0] for c in folder.clips}
    assert [len(whole[c.name]) for c in folder.clips] == [c.num_samples for c in folder.clips]
    for train in (True, False):
        ds = CaptionDataset(folder.clips, _tokenize, sampling_rate=SR, crop_samples=crop, train=train, seed=3)
        for epoch in range(3):
            ds.set_epoch(epoch)
            for index, clip in enumerate(folder.clips):
                n = clip.num_samples
                if n > crop:
                    drawn = np.random.default_rng((3, epoch, index)).integers(0, n - crop + 1)
                    start = int(drawn) if train else (n - crop) // 2
                    expected = whole[clip.name][start : start + crop]
                else:
                    expected = whole[clip.name]
                got = ds[index]["waveform"]
                assert got.shape == expected.shape and got.dtype == np.float32
                np.testing.assert_allclose(got, expected, atol=1e-6)
                if clip.name == "short.wav":
                    np.testing.assert_array_equal(got, expected)
    long_reads = [duration for name, duration in reads if name == "long.flac"]
    assert long_reads and all(duration is not None and duration < 0.5 for duration in long_reads), long_reads
    assert ("short.wav", None) in reads


def test_a_demo_sets_own_record_is_not_reported_as_unread_metadata(tmp_path):
    """Every CLAP demo run printed "note: not read: demo.json (the captions come from metadata.jsonl only)"
    about the file the demo had written itself; a demo.json of someone's folder is still named."""
    folder = make_caption_demo(tmp_path / "demo", CaptionDemoConfig(n_clips=4, seed=0))
    assert "note" not in scan_caption_folder(folder).report()
    root = tmp_path / "data"
    _wav(root / "a.wav")
    (root / "metadata.csv").write_text("file_name,caption\na.wav,a tone\n")
    (root / "demo.json").write_text(json.dumps([{"file_name": "a.wav", "caption": "a tone"}]))
    report = scan_caption_folder(root).report()
    assert "note: not read: demo.json (the captions come from metadata.csv only)" in report
    (root / "demo.json").write_text(
        json.dumps({"a.wav": "a tone", "version": 1})
    )  # an object, not a set's record
    report = scan_caption_folder(root).report()
    assert "note: not read: demo.json (the captions come from metadata.csv only)" in report


def test_jsonl_caption_null_is_named_null_not_missing(tmp_path):
    root = tmp_path / "data"
    _wav(root / "a.wav")
    _wav(root / "b.wav")
    (root / "metadata.jsonl").write_text(
        '{"file_name": "a.wav", "caption": "a bell"}\n{"file_name": "b.wav", "caption": null}\n'
    )
    reasons = _reasons(scan_caption_folder(root))
    assert reasons["metadata.jsonl:2 (b.wav)"] == (
        "missing caption (caption is null; expected a string or a list of strings)"
    )
    # Every caption_N null is a missing caption too, not an "empty caption".
    (root / "metadata.jsonl").write_text(
        '{"file_name": "a.wav", "caption": "a bell"}\n'
        '{"file_name": "b.wav", "caption_1": null, "caption_2": null}\n'
    )
    reasons = _reasons(scan_caption_folder(root))
    assert reasons["metadata.jsonl:2 (b.wav)"] == (
        "missing caption (caption_1 is null; expected a string or a list of strings)"
    )


@pytest.mark.parametrize("layout", ["metadata.jsonl", "metadata.json"])
def test_json_metadata_reads_caption_n_fields_as_a_csv_header_does(tmp_path, layout):
    """The README offers caption_1, caption_2, ... for every metadata file; the JSON layouts skipped such
    rows as "missing caption". A null among them is an empty cell: left out and noted."""
    root = tmp_path / "data"
    _wav(root / "a.wav")
    _wav(root / "b.wav")
    rows = [
        {"file_name": "a.wav", "Caption_2": "two", "caption_1": "one"},
        {"file_name": "b.wav", "caption_1": "only", "caption_2": None},
    ]
    text = "\n".join(json.dumps(r) for r in rows) if layout.endswith("l") else json.dumps(rows)
    (root / layout).write_text(text)
    folder = scan_caption_folder(root)
    assert [c.captions for c in folder.clips] == [("one", "two"), ("only",)]
    assert not folder.skipped
    assert any("caption_2" in n.text and n.kind == "empty" for n in folder.caption_notes)


@pytest.mark.parametrize("layout", ["metadata.jsonl", "metadata.json"])
def test_json_metadata_repeating_a_field_in_another_case_is_refused_as_in_a_csv_header(tmp_path, layout):
    """The last of the two won, the other caption dropped unsaid; metadata.csv refuses the same header."""
    root = tmp_path / "data"
    _wav(root / "a.wav")
    row = '{"file_name": "a.wav", "caption": "first", "Caption": "second"}'
    (root / layout).write_text(row if layout.endswith("l") else f"[{row}]")
    where = f"{layout}:1" if layout.endswith("l") else f"{layout} item 1"
    with pytest.raises(
        CaptionFolderError,
        match=re.escape(f"{where}: fields ['caption'] appear more than once (names are case-insensitive)"),
    ):
        scan_caption_folder(root)


def test_file_name_with_surrounding_spaces_is_found_as_written_or_stripped(tmp_path):
    """A CSV cell is exact: a file whose name begins with spaces is found; a cell padded by hand finds the
    file without the spaces, and the report says so; a name found neither way says it was tried both ways."""
    root = tmp_path / "data"
    _wav(root / "  spaced .wav")
    _wav(root / "padded.wav")
    (root / "metadata.csv").write_text(
        "file_name,caption\n  spaced .wav,one\n padded.wav ,two\n gone.wav ,three\n"
    )
    folder = scan_caption_folder(root)
    assert sorted(c.name for c in folder.clips) == ["  spaced .wav", "padded.wav"]
    assert folder.unlisted_audio == []
    report = folder.report()
    assert "matched the file without them: metadata.csv:3 (' padded.wav ')" in report
    assert (
        "metadata.csv:4 ( gone.wav ): file listed but absent (with or without the spaces around ' gone.wav '"
        in report
    )
    # A name as written wins over the same name stripped when both files exist.
    _wav(root / " padded.wav")
    (root / "metadata.csv").write_text("file_name,caption\n padded.wav,two\n")
    folder = scan_caption_folder(root)
    assert [c.name for c in folder.clips] == [" padded.wav"]
    assert "matched the file without them" not in folder.report()


def test_empty_and_repeated_captions_are_counted_and_named(tmp_path):
    """Clotho's five caption columns: an empty cell is left out and a repeat is kept (every caption counts in
    the published protocol), and the report names each, so the caption count adds up."""
    root = tmp_path / "data"
    for name in ("c0", "c1", "c2"):
        _wav(root / f"{name}.wav")
    (root / "metadata.csv").write_text(
        "file_name,caption_1,caption_2,caption_3,caption_4,caption_5\n"
        "c0.wav,a dog barks,a dog barks,A dog barks.,a dog  barks,\n"
        "c1.wav,rain,wind,,,\n"
        "c2.wav,x1,x2,x3,x4,x5\n"
        "c2.wav,x1,,,,\n"
    )
    folder = scan_caption_folder(root)
    assert [c.captions for c in folder.clips] == [
        ("a dog barks", "a dog barks", "A dog barks.", "a dog  barks"),
        ("rain", "wind"),
        ("x1", "x2", "x3", "x4", "x5", "x1"),
    ]
    report = folder.report()
    assert "3 clips, 12 captions" in report
    assert "captions: 8 empty left out, 2 repeating another caption of the same clip kept" in report
    assert "metadata.csv:2 (c0.wav): caption_2 repeats caption_1 ('a dog barks'; kept)" in report
    assert "metadata.csv:2 (c0.wav): caption_5 empty (left out)" in report
    assert "metadata.csv:3 (c1.wav): caption_3, caption_4, caption_5 empty (left out)" in report
    assert "metadata.csv:5 (c2.wav): caption_1 repeats metadata.csv:4 caption_1 ('x1'; kept)" in report


def test_jsonl_rows_repeating_a_caption_and_empty_list_items_are_named(tmp_path):
    """AudioCaps-style rows, one caption each, two of them the same for one clip."""
    root = tmp_path / "data"
    _wav(root / "c0.wav")
    (root / "metadata.jsonl").write_text(
        '{"file_name": "c0.wav", "caption": "a man speaks"}\n'
        '{"file_name": "c0.wav", "caption": "a man speaks"}\n'
        '{"file_name": "c0.wav", "captions": ["rain", " "]}\n'
    )
    folder = scan_caption_folder(root)
    assert folder.clips[0].captions == ("a man speaks", "a man speaks", "rain")
    report = folder.report()
    assert (
        "metadata.jsonl:2 (c0.wav): caption repeats metadata.jsonl:1 caption ('a man speaks'; kept)" in report
    )
    assert "metadata.jsonl:3 (c0.wav): captions[1] empty (left out)" in report
    assert "captions: 1 empty left out, 1 repeating" in report
    (root / "metadata.jsonl").write_text('{"file_name": "c0.wav", "captions": ["rain", ""]}\n')
    assert "  captions: 1 empty left out\n" in scan_caption_folder(root).report() + "\n"


def test_metadata_files_below_the_top_outside_split_folders_are_named_as_not_read(tmp_path):
    """Metadata files in folders that are no split (AudioFolder's train/ and test/ are read: see
    test_audiofolder_per_split_metadata_files_are_read_each_for_its_split) ended with "no usable captioned
    clips found" and a missing caption per clip, never naming the files it did not read."""
    root = tmp_path / "data"
    for split in ("birds", "cars"):
        _wav(root / split / "a.wav")
        (root / split / "metadata.csv").write_text("file_name,text\na.wav,a bell\n")
    with pytest.raises(CaptionFolderError) as caught:
        scan_caption_folder(root)
    message = str(caught.value)
    assert "not read: birds/metadata.csv, cars/metadata.csv: only a metadata file at the top" in message
    assert "split column" in message


@pytest.mark.parametrize(
    "bad, reason",
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"file_name": ' + "9" * 5000 + "}", "an integer of more than 4300 digits"),
    ],
)
def test_deep_or_huge_number_metadata_is_a_counted_skip_in_jsonl_and_named_in_json(tmp_path, bad, reason):
    """A line nested 100,000 deep gave a raw RecursionError, and a 5000-digit number an error naming no file;
    in JSON Lines a bad line is a counted skip, as a syntax error is."""
    root = tmp_path / "data"
    _wav(root / "a.wav")
    good = json.dumps({"file_name": "a.wav", "caption": "a tone"})
    (root / "metadata.jsonl").write_text(good + "\n" + bad + "\n")
    folder = scan_caption_folder(root)
    assert [c.name for c in folder.clips] == ["a.wav"]
    assert len(folder.skipped) == 1
    assert str(folder.skipped[0]) == f"metadata.jsonl:2: not valid JSON ({reason})"
    (root / "metadata.jsonl").unlink()
    (root / "metadata.json").write_text("[" + good + ", " + bad + "]")
    with pytest.raises(CaptionFolderError, match=rf"metadata.json: not valid JSON \({reason}\); expected"):
        scan_caption_folder(root)


def test_a_caption_file_linked_out_of_the_folder_is_not_read(tmp_path):
    """Nothing outside the data folder is read: a clip.txt that is a symlink out of it is a skip, its text
    never a caption."""
    root = tmp_path / "data"
    _wav(root / "a.wav")
    (tmp_path / "private.txt").write_text("a private note")
    os.symlink(tmp_path / "private.txt", root / "a.txt")
    _wav(root / "b.wav")
    (root / "b.txt").write_text("a bell")
    folder = scan_caption_folder(root)
    assert [(c.name, c.captions) for c in folder.clips] == [("b.wav", ("a bell",))]
    assert _reasons(folder)["a.txt"].startswith("caption file is a symlink out of the data folder (to ")


def test_a_caption_file_saved_with_a_bom_reads_without_it(tmp_path):
    """Notepad's "UTF-8 with BOM": the BOM is not part of the first caption (strip() keeps U+FEFF)."""
    root = tmp_path / "data"
    _wav(root / "a.wav")
    (root / "a.txt").write_bytes("\ufeffa dog barks\nrain\n".encode())
    assert scan_caption_folder(root).clips[0].captions == ("a dog barks", "rain")


def test_file_names_that_are_not_plain_relative_paths_are_skips_naming_why(tmp_path, outside, record_loads):
    """A NUL, a drive-relative Windows path and a backslashed '..' are each a skip saying what is wrong with
    the name (the NUL one stopped the scan with 'embedded null byte'); the other rows are read."""
    root = tmp_path / "data"
    _wav(root / "a.wav")
    (root / "sub").mkdir()
    names = ["a.wav", "b\u0000.wav", "C:a.wav", "sub\\..\\..\\secret\\outside.wav"]
    (root / "metadata.jsonl").write_text(
        "".join(json.dumps({"file_name": name, "caption": "x"}) + "\n" for name in names)
    )
    folder = scan_caption_folder(root)
    assert [c.name for c in folder.clips] == ["a.wav"]
    assert [s.reason for s in folder.skipped] == [
        "file_name contains a NUL character",
        "absolute path; file_name must be relative to the data folder",
        "path escapes the data folder ('..')",
    ]
    assert str(outside) not in record_loads


def test_a_csv_header_repeating_a_column_in_another_case_is_refused(tmp_path):
    """Caption and caption are one column: the reader would keep the last cell under both names."""
    root = tmp_path / "data"
    _wav(root / "a.wav")
    (root / "metadata.csv").write_text("file_name,Caption,caption\na.wav,first,second\n")
    with pytest.raises(
        CaptionFolderError,
        match=re.escape(
            "line 1: columns ['Caption', 'caption'] name the same column (names are case-insensitive); "
            "found columns ['file_name', 'Caption', 'caption']"
        ),
    ):
        scan_caption_folder(root)


def test_a_line_break_in_a_cell_other_than_a_caption_is_refused_naming_the_cell(tmp_path):
    """A caption may hold a line break; a label or a split cannot (a quote left open, most likely)."""
    root = tmp_path / "data"
    _wav(root / "a.wav")
    _wav(root / "b.wav")
    (root / "metadata.csv").write_text('file_name,caption,label\na.wav,x,"dog\ncat"\nb.wav,y,bird\n')
    with pytest.raises(
        CaptionFolderError, match="metadata.csv:2: the quoted 'label' cell runs over lines 2-3"
    ):
        scan_caption_folder(root)


@pytest.mark.parametrize("layout", ["metadata.jsonl", "metadata.json"])
def test_a_json_caption_holding_a_lone_surrogate_is_a_listed_skip(tmp_path, layout):
    """A \\ud800 escape decodes to half a UTF-16 pair, which the tokenizer cannot encode: the CLAP run ended
    in a raw TypeError from `tokenizers` naming neither file nor caption. It is skipped as the other bad
    caption values are, naming its line and the character."""
    root = tmp_path / "data"
    _wav(root / "a.wav")
    _wav(root / "b.wav")
    rows = [
        {"file_name": "a.wav", "caption": "a bell"},
        {"file_name": "b.wav", "caption": ["rain", "a \ud800 dog"]},
    ]
    text = "".join(json.dumps(r) + "\n" for r in rows) if layout.endswith("l") else json.dumps(rows)
    (root / layout).write_text(text)
    folder = scan_caption_folder(root)
    assert [c.name for c in folder.clips] == ["a.wav"]
    where = f"{layout}:2 (b.wav)" if layout.endswith("l") else f"{layout} item 2 (b.wav)"
    assert _reasons(folder)[where].startswith("caption[1] holds a lone surrogate ('\\ud800' at character 2: ")


def test_a_jsonl_caption_holding_a_unicode_line_separator_stays_one_caption(tmp_path):
    """JSON Lines are split on newlines only: U+2028 inside a string, written raw, is part of the caption."""
    root = tmp_path / "data"
    _wav(root / "a.wav")
    row = json.dumps({"file_name": "a.wav", "caption": "a bell\u2028then rain"}, ensure_ascii=False)
    (root / "metadata.jsonl").write_text(row + "\n", encoding="utf-8")
    folder = scan_caption_folder(root)
    assert folder.clips[0].captions == ("a bell\u2028then rain",) and not folder.skipped


def test_split_folders_in_any_case_and_blank_split_cells(tmp_path):
    """Train/ and Test/ are the train and test splits; a split cell of spaces is no split, not a split ''."""
    root = tmp_path / "side"
    for split, name in (("Train", "a"), ("Test", "b")):
        _wav(root / split / f"{name}.wav")
        (root / split / f"{name}.txt").write_text("x")
    assert scan_caption_folder(root).splits == ["test", "train"]
    root = tmp_path / "meta"
    _wav(root / "a.wav")
    _wav(root / "b.wav")
    (root / "metadata.csv").write_text("file_name,caption,split\na.wav,x,  \nb.wav,y,train\n")
    folder = scan_caption_folder(root)
    assert [(c.name, c.split) for c in folder.clips] == [("a.wav", None), ("b.wav", "train")]
    assert folder.splits == ["train"]


def test_json_captions_field_is_used_and_a_text_field_beside_it_is_not(tmp_path):
    """``captions``, else ``text``: a row holding both (a converted Hugging Face set) gains no caption."""
    root = tmp_path / "data"
    _wav(root / "a.wav")
    (root / "metadata.jsonl").write_text(
        json.dumps({"file_name": "a.wav", "captions": ["x", "y"], "text": "z"}) + "\n"
    )
    assert scan_caption_folder(root).clips[0].captions == ("x", "y")


def test_check_audio_measures_as_load_does_and_skips_what_a_loader_cannot_read(tmp_path):
    """num_samples is the length `load` gives at the rate asked (rounded up, as `resample` does); a loader of
    one's own that raises RuntimeError makes an unreadable-audio skip, not a stopped scan, and one that
    returns no samples a skip saying so (not "too short (0 ms)")."""
    root = tmp_path / "data"
    root.mkdir()
    sf.write(root / "a.wav", np.full(44101, 0.1, np.float32), 44100)  # 48001.09 samples at 48 kHz
    (root / "a.txt").write_text("x")
    folder = scan_caption_folder(root, sampling_rate=SR)
    wave, _ = audiotrain.audio.load(root / "a.wav", sr=SR, mono=True)
    assert folder.clips[0].num_samples == wave.shape[-1] == 48002

    def crashing_load(path, sr=None, mono=True):
        raise RuntimeError("decoder crashed")

    folder = scan_caption_folder(root)
    folder.check_audio(SR, load=crashing_load)
    assert folder.clips == [] and [str(s) for s in folder.skipped] == [
        "a.wav: unreadable audio (decoder crashed)"
    ]

    def empty_load(path, sr=None, mono=True):
        return np.zeros(0, np.float32), 16000

    folder = scan_caption_folder(root)
    folder.check_audio(SR, load=empty_load)
    assert [str(s) for s in folder.skipped] == ["a.wav: audio has no samples"]


def test_the_report_counts_the_caption_notes_of_kept_clips_only(tmp_path):
    """An empty caption cell of a clip skipped later (unreadable audio) is not counted, and a report listing
    every note ends without an '... and 0 more' line."""
    root = tmp_path / "data"
    _wav(root / "a.wav")
    _wav(root / "b.wav")
    (root / "c.wav").write_text("not audio")
    (root / "metadata.csv").write_text("file_name,caption_1,caption_2\na.wav,x,\nb.wav,y,z\nc.wav,w,\n")
    report = scan_caption_folder(root, sampling_rate=16000).report()
    assert "  captions: 1 empty left out\n    metadata.csv:2 (a.wav): caption_2 empty (left out)\n" in report
    assert "(c.wav): caption_2 empty" not in report and "... and" not in report


def test_a_jsonl_caption_that_is_no_string_is_skipped_naming_the_value(tmp_path):
    # A caption list holding a number was skipped as "caption must be a string or a list of strings", naming
    # neither which item nor what it held.
    import soundfile as sf

    folder = tmp_path / "sounds"
    folder.mkdir()
    for name in ("a.wav", "b.wav", "c.wav"):
        sf.write(folder / name, np.zeros(16000, np.float32), 16000)
    rows = [
        {"file_name": "a.wav", "caption": ["a door slam", 7]},
        {"file_name": "b.wav", "caption": {"en": "a drip"}},
        {"file_name": "c.wav", "caption": "wind"},
    ]
    (folder / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    reasons = _reasons(scan_caption_folder(folder))
    assert (
        reasons["metadata.jsonl:1 (a.wav)"]
        == "caption must be a string or a list of strings (caption[1] is 7)"
    )
    assert reasons["metadata.jsonl:2 (b.wav)"] == (
        'caption must be a string or a list of strings (got {"en": "a drip"})'
    )


def test_a_listed_file_found_only_in_a_sub_folder_is_named_in_the_skip(tmp_path):
    # Metadata written with bare names ("drip.wav") for a library sorted into sub-folders (water/drip.wav) was
    # "file listed but absent", with no word of where the file is.
    import soundfile as sf

    folder = tmp_path / "sounds"
    (folder / "water").mkdir(parents=True)
    for name in ("water/drip.wav", "door.wav"):
        sf.write(folder / name, np.zeros(16000, np.float32), 16000)
    (folder / "metadata.csv").write_text("file_name,caption\ndrip.wav,a drip\ndoor.wav,a door\n")
    reasons = _reasons(scan_caption_folder(folder))
    assert reasons["metadata.csv:2 (drip.wav)"] == (
        "file listed but absent; the folder has water/drip.wav: a file_name is the path from the data folder"
    )


def test_audiofolder_metadata_at_the_top_takes_each_clips_split_from_its_train_or_test_folder(tmp_path):
    """Hugging Face AudioFolder's layout with one metadata file at the top (file_name train/a.wav, no split
    column) read every clip as "without a split": a run held out clips at random and trained on test/'s
    clips. A split folder sets the split as in the side-by-side layout; a split cell still wins."""
    root = tmp_path / "data"
    for name in ("train/a.wav", "train/b.wav", "Test/c.wav", "validation/d.wav", "other/e.wav"):
        _wav(root / name)
    rows = [("train/a.wav", ""), ("train/b.wav", "test"), ("Test/c.wav", ""), ("validation/d.wav", "")]
    with open(root / "metadata.jsonl", "w") as f:
        for name, split in rows + [("other/e.wav", "")]:
            f.write(json.dumps({"file_name": name, "text": "a bell", **({"split": split} if split else {})}))
            f.write("\n")
    folder = scan_caption_folder(root)
    assert {c.name: c.split for c in folder.clips} == {
        "train/a.wav": "train",
        "train/b.wav": "test",
        "Test/c.wav": "test",
        "validation/d.wav": "validation",
        "other/e.wav": None,
    }


def test_a_caption_column_whose_name_is_misspelt_is_named_in_the_report_not_dropped_unsaid(tmp_path):
    """A Clotho header with `caption5` (no underscore) or `captions_2` lost those columns' captions without a
    word: the report said "1 clips, 2 captions" and every score counted fewer captions than the file holds."""
    root = tmp_path / "data"
    _wav(root / "a.wav")
    (root / "metadata.csv").write_text(
        "file_name,caption_1,captions_2,caption_3,caption5,text,source\na.wav,one,two,three,five,six,web\n"
    )
    folder = scan_caption_folder(root)
    assert folder.clips[0].captions == ("one", "three")
    assert "columns not read as captions: captions_2, caption5, text" in folder.report()
    assert "source" not in folder.report()


def test_audiofolder_per_split_metadata_files_are_read_each_for_its_split(tmp_path):
    """Hugging Face AudioFolder's per-split layout (train/metadata.jsonl, test/metadata.csv, each naming the
    files beside it) ended with "no usable captioned clips found": only a metadata file at the top was read.
    Each split folder's file is read now, its rows' paths taken from that folder and its name the split."""
    root = tmp_path / "data"
    for name in ("train/a.wav", "train/b.wav", "test/c.wav", "clips/d.wav"):
        _wav(root / name)
    (root / "train" / "metadata.jsonl").write_text(
        "".join(
            json.dumps(row) + "\n"
            for row in (
                {"file_name": "a.wav", "text": "a bell"},
                {"file_name": "gone.wav", "text": "x"},
                {"file_name": "b.wav", "text": "a drum", "split": "validation"},
            )
        )
    )
    (root / "test" / "metadata.csv").write_text("file_name,text\nc.wav,a horn\n")
    (root / "clips" / "metadata.csv").write_text("file_name,text\nd.wav,a gong\n")
    folder = scan_caption_folder(root)
    assert {c.name: (c.split, c.captions) for c in folder.clips} == {
        "train/a.wav": ("train", ("a bell",)),
        "train/b.wav": ("validation", ("a drum",)),
        "test/c.wav": ("test", ("a horn",)),
    }
    report = folder.report()
    assert "train/metadata.jsonl:2 (train/gone.wav): file listed but absent" in report
    assert "not read: clips/metadata.csv" in report
    assert "clips/d.wav" in folder.unlisted_audio
    assert sorted(c.listed_at for c in folder.clips) == [
        "test/metadata.csv:2",
        "train/metadata.jsonl:1",
        "train/metadata.jsonl:3",
    ]


def test_a_split_folder_without_its_metadata_file_is_refused_not_left_out(tmp_path):
    """.txt captions beside the audio in train/ and test/, with one stray train/metadata.csv, read as two
    splits of 4 clips before 36198f16; then train/metadata.csv alone was read: test/'s clips and every .txt
    caption were left out without a note, and a run held its evaluation clips out of train/ instead."""
    root = tmp_path / "data"
    for name in ("train/a", "train/b", "test/c", "test/d"):
        _wav(root / f"{name}.wav")
        (root / f"{name}.txt").write_text(f"caption of {name}")
    (root / "train" / "metadata.csv").write_text("file_name,caption\na.wav,x\nb.wav,y\n")
    with pytest.raises(CaptionFolderError) as refused:
        scan_caption_folder(root)
    assert "but test/ (2 audio files) has no metadata file: add one there" in str(refused.value)
    assert "move train/metadata.csv out of the data folder" in str(refused.value)


def test_the_skip_count_line_groups_absent_files_however_each_names_its_look_alike(tmp_path):
    """Clotho's CSV beside development/ (file_name without the folder) skipped every row as absent, and the
    count line gave each its own group: 'skipped 3: 1 file listed but absent; the folder has
    development/a0.wav, 1 file listed but absent; ...', one group per clip (3839 for Clotho's development)."""
    root = tmp_path / "data"
    for i in range(3):
        _wav(root / "development" / f"a{i}.wav")
    _wav(root / "b.wav")
    (root / "metadata.csv").write_text("file_name,caption_1\na0.wav,x\na1.wav,y\na2.wav,z\nb.wav,w\n")
    report = scan_caption_folder(root).report()
    assert "  skipped 3: 3 file listed but absent\n" in report
    assert "metadata.csv:2 (a0.wav): file listed but absent; the folder has development/a0.wav" in report


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", "metadata.csv: the file is empty; expected a header line with file_name and caption"),
        ("\n\n", "metadata.csv: the file is empty; expected a header line with file_name and caption"),
        (
            "audiocap_id,youtube_id,start_time,caption\n1,yt0,30,a dog\n",
            "AudioCaps' CSV names no audio file: add a file_name column naming each clip's file from the "
            "data folder, e.g. train/<youtube_id>.wav",
        ),
    ],
)
def test_an_empty_or_audiocaps_csv_says_what_the_header_needs(tmp_path, text, expected):
    """An empty metadata.csv said "found columns [] (...no delimiter among comma, semicolon and tab gives
    a 'file_name' column)", and AudioCaps' own CSV (youtube_id, no file_name) did not say how to name its
    clips."""
    root = tmp_path / "data"
    _wav(root / "train" / "yt0.wav")
    (root / "metadata.csv").write_text(text)
    with pytest.raises(CaptionFolderError) as caught:
        scan_caption_folder(root)
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "filename,fold,target,category\naudio/yt0.wav,1,0,dog\n",
            "rename 'filename' to file_name (the path from the data folder: audio/x.wav); 'category' holds "
            "classes, not captions: for zero-shot scores add a caption column",
        ),
        ("file_name,label\naudio/yt0.wav,dog\n", "'label' holds classes, not captions"),
        (  # UrbanSound8K's metadata/UrbanSound8K.csv: its file column was not named
            "slice_file_name,fsID,start,end,salience,fold,classID,class\n"
            "audio/yt0.wav,1,0,1,1,1,3,dog_bark\n",
            "rename 'slice_file_name' to file_name (the path from the data folder: audio/x.wav); "
            "'class' holds",
        ),
    ],
)
def test_a_classification_csv_says_how_to_make_it_a_caption_folder(tmp_path, text, expected):
    """ESC-50's own meta CSV (filename, category) and a `file_name,label` CSV, what a zero-shot user has,
    were refused with "the header needs 'file_name' and 'caption' ...; found columns [...]" alone: nothing
    said that `filename` is the file column to rename, or that captions can be made from the classes."""
    root = tmp_path / "data"
    _wav(root / "audio" / "yt0.wav")
    (root / "metadata.csv").write_text(text)
    with pytest.raises(CaptionFolderError) as caught:
        scan_caption_folder(root)
    assert expected in str(caught.value)


def test_a_caption_of_only_invisible_characters_is_an_empty_caption(tmp_path):
    """A caption cell holding only a zero-width space, a byte-order mark or control characters (pasted from
    a web page or a spreadsheet) looks empty, but was kept as a caption: the model trained on it and its
    retrieval scores counted it, and the data report said nothing. It is now an empty caption, named so;
    a caption with visible text keeps its inner invisible characters as written."""
    for name in ("a.wav", "b.wav", "c.wav", "d.wav"):
        _wav(tmp_path / name)
    rows = [
        ("a.wav", "\u200b"),
        ("b.wav", "\ufeff \x00"),
        ("c.wav", "\u2060\t\u200d"),
        ("d.wav", "a\u200bdog"),
    ]
    with open(tmp_path / "metadata.jsonl", "w", encoding="utf-8") as f:
        for file_name, caption in rows:
            f.write(json.dumps({"file_name": file_name, "caption": caption}) + "\n")
    folder = scan_caption_folder(tmp_path, sampling_rate=SR)
    assert [(c.name, c.captions) for c in folder.clips] == [("d.wav", ("a\u200bdog",))]
    reasons = {s.file: s.reason for s in folder.skipped}
    for line, name in ((1, "a.wav"), (2, "b.wav"), (3, "c.wav")):
        assert reasons[f"metadata.jsonl:{line} ({name})"] == "empty caption"


def test_a_caption_file_line_of_only_invisible_characters_is_not_a_caption(tmp_path):
    """Side by side: clip.txt's lines are captions; one holding only a zero-width space was a caption."""
    _wav(tmp_path / "a.wav")
    (tmp_path / "a.txt").write_text("a dog barks\n\u200b\n", encoding="utf-8")
    _wav(tmp_path / "b.wav")
    (tmp_path / "b.txt").write_text("\u200b\ufeff\n", encoding="utf-8")
    folder = scan_caption_folder(tmp_path, sampling_rate=SR)
    assert [(c.name, c.captions) for c in folder.clips] == [("a.wav", ("a dog barks",))]
    assert "empty caption" in {s.file: s.reason for s in folder.skipped}["b.wav"]
