"""Clip metadata as spreadsheets and pandas write it: BOMs, encodings, spaces, floats, labels with columns."""

import json
import warnings

from audiotrain.datasets.chord_clips import ChordClip, ChordClipDataset, read_clip_metadata

import numpy as np
import pytest
import soundfile as sf

HEADER = "file_name,chord_type,root,bass_note\n"


@pytest.fixture
def folder(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(800, np.float32), 8000)
    sf.write(tmp_path / "b.wav", np.zeros(800, np.float32), 8000)
    return tmp_path


def _targets(clips: list[ChordClip]) -> list[tuple[int, int, int]]:
    return [(c.chord_type, c.root, c.bass) for c in clips]


def _jsonl(rows) -> str:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n"


def test_csv_with_a_utf8_bom_is_read(folder):
    # Excel's "CSV UTF-8" starts the file with a BOM, which would otherwise stick to the first header name.
    (folder / "metadata.csv").write_bytes((HEADER + "a.wav,maj,C,C\n").encode("utf-8-sig"))
    assert _targets(read_clip_metadata(folder)) == [(2, 0, 0)]


def test_jsonl_with_a_utf8_bom_is_read(folder):
    text = _jsonl([{"file_name": "a.wav", "label": "D:min"}])
    (folder / "metadata.jsonl").write_bytes(text.encode("utf-8-sig"))
    assert _targets(read_clip_metadata(folder)) == [(3, 2, 2)]


def test_a_file_that_is_not_utf8_is_named_with_its_line(folder):
    text = HEADER + "a.wav,maj,C,C\nb.wav,min,A,A # Sébastien\n"
    (folder / "metadata.csv").write_bytes(text.encode("latin-1"))
    with pytest.raises(ValueError, match=r"metadata\.csv, line 3: the byte 0xe9 at offset \d+ is not UTF-8"):
        read_clip_metadata(folder)


@pytest.mark.parametrize("name", ["metadata.csv", "metadata.jsonl"])
def test_a_metadata_file_saved_as_utf16_is_named_so(folder, name):
    """Windows PowerShell 5's `>` writes UTF-16: its byte-order mark was "the byte 0xff at offset 0 is not
    UTF-8", which sent users looking for an accented letter; the clip tables say UTF-16, as the annotation
    and config readers do."""
    text = HEADER + "a.wav,maj,C,C\n" if name.endswith(".csv") else '{"file_name": "a.wav", "label": "C"}\n'
    (folder / name).write_bytes(text.encode("utf-16"))
    with pytest.raises(ValueError, match=r"metadata\.(csv|jsonl): a UTF-16 text file .* save it as UTF-8"):
        read_clip_metadata(folder)


def test_bad_json_lines_are_listed_with_the_other_bad_rows(folder):
    rows = [
        {"file_name": "a.wav", "chord_type": 40, "root": 0, "bass_note": 0},
        '{"file_name": "a.wav", "chord_type": ',
        "[1, 2]",
        {"file_name": "b.wav", "chord_type": "maj", "root": "H", "bass_note": 0},
        {"file_name": "b.wav", "chord_type": "maj", "root": "C", "bass_note": "C"},
    ]
    (folder / "metadata.jsonl").write_text(_jsonl(rows))
    with pytest.raises(ValueError) as info:
        read_clip_metadata(folder)
    message = str(info.value)
    assert "4 bad rows" in message
    assert "line 1: chord_type 40 is outside 0..31" in message
    assert "metadata.jsonl, line 2: not valid JSON" in message
    assert "line 3: expected a JSON object, got list" in message
    assert "line 4: root 'H'" in message
    assert message.index("line 1:") < message.index("line 2:") < message.index("line 4:")


def test_integral_floats_are_class_indices(folder):
    # pandas writes an int column with a gap as floats: 2.0 in JSON, "2.0" in CSV, NaN or empty for the gap.
    rows = [
        {"file_name": "a.wav", "chord_type": 2.0, "root": 9.0, "bass_note": 4.0},
        {"file_name": "b.wav", "chord_type": 0.0, "root": float("nan"), "bass_note": None},
    ]
    (folder / "metadata.jsonl").write_text(_jsonl(rows))
    assert _targets(read_clip_metadata(folder)) == [(2, 9, 4), (0, -1, -1)]
    (folder / "metadata.jsonl").unlink()
    (folder / "metadata.csv").write_text(HEADER + "a.wav,3.0,2.0,-1.0\n")
    assert _targets(read_clip_metadata(folder)) == [(3, 2, 2)]


def test_a_fractional_class_index_gets_a_short_message(folder):
    (folder / "metadata.jsonl").write_text(
        _jsonl([{"file_name": "a.wav", "chord_type": 2.5, "root": 0, "bass": 0}])
    )
    with pytest.raises(ValueError, match=r"line 1: chord_type '2.5' is not a whole class index$"):
        read_clip_metadata(folder)


def test_a_pitch_class_index_past_11_is_a_bad_row(folder):
    # 12 would reach a 12-way head, whose loss reads it as class 11: the clip would train as B.
    (folder / "metadata.csv").write_text(HEADER + "a.wav,maj,11,11\nb.wav,maj,12,0\nb.wav,maj,0,12\n")
    with pytest.raises(ValueError) as info:
        read_clip_metadata(folder)
    message = str(info.value)
    assert "2 bad rows" in message
    assert "line 3: root 12 is outside 0..11" in message
    assert "line 4: bass_note 12 is outside 0..11" in message
    (folder / "metadata.csv").write_text(HEADER + "a.wav,maj,11,11\n")
    assert _targets(read_clip_metadata(folder)) == [(2, 11, 11)]


def test_spaces_around_csv_names_and_values_are_ignored(folder):
    (folder / "metadata.csv").write_text("file_name, chord_type , root,bass_note\n a.wav , min7, F# , F#\n")
    clips = read_clip_metadata(folder)
    assert _targets(clips) == [(12, 6, 6)] and clips[0].audio_path == folder / "a.wav"


def test_csv_line_numbers_skip_blank_lines(folder):
    (folder / "metadata.csv").write_text(HEADER + "a.wav,maj,C,C\n\nb.wav,maj,H,C\n")
    with pytest.raises(ValueError, match=r"metadata\.csv, line 4: root 'H'"):
        read_clip_metadata(folder)


def test_both_metadata_files_is_an_error(folder):
    (folder / "metadata.csv").write_text(HEADER + "a.wav,maj,C,C\n")
    (folder / "metadata.jsonl").write_text(_jsonl([{"file_name": "a.wav", "label": "D:min"}]))
    with pytest.raises(ValueError, match=r"both metadata\.csv and metadata\.jsonl .*keep only one"):
        read_clip_metadata(folder)


def test_a_label_that_disagrees_with_its_columns_is_a_bad_row(folder):
    (folder / "metadata.csv").write_text(
        HEADER.replace("\n", ",label\n")
        + "a.wav,min,D,D,D:min\n"  # agrees
        + "b.wav,maj,C,,C:maj\n"  # agrees, bass left empty
        + "a.wav,maj,C,C,D:min\n"  # disagrees on all three
        + "b.wav,maj7,0,4,C:maj7/5\n"  # disagrees on the bass only
    )
    with pytest.raises(ValueError) as info:
        read_clip_metadata(folder)
    message = str(info.value)
    assert "2 bad rows" in message
    assert (
        "line 4: label 'D:min' disagrees with chord_type 'maj' (label: min), root 'C' (label: D), "
        "bass_note 'C' (label: D)" in message
    )
    assert "line 5: label 'C:maj7/5' disagrees with bass_note '4' (label: G)" in message


def test_a_label_with_matching_or_empty_columns_is_read(folder):
    rows = [
        {"file_name": "a.wav", "label": "C:maj7/3", "chord_type": "maj7", "root": 0, "bass": "E"},
        {"file_name": "b.wav", "label": "N", "chord_type": "N", "root": -1, "bass": ""},
    ]
    (folder / "metadata.jsonl").write_text(_jsonl(rows))
    assert _targets(read_clip_metadata(folder)) == [(11, 0, 4), (0, -1, -1)]


def test_contradictory_and_malformed_rows_are_named_with_their_line(folder):
    """Accepted without a word before: a clip listed again with another chord (also spelled ./a.wav), an N/X
    row given a root (every 'min' row of a vocabulary numbered from maj = 0 becomes X so), and CSV rows with a
    cell missing or too many (a comma slip)."""
    rows = [
        "a.wav,maj,C,C",
        "a.wav,maj,C,C",  # the same chord again: weighs the clip twice, no contradiction
        "./a.wav,min,A,A",
        "b.wav,X,9,9",
        "b.wav,min,F",
        "b.wav,maj,C,C,G",
        "b.wav,N,,",
    ]
    (folder / "metadata.csv").write_text(HEADER + "\n".join(rows) + "\n")
    with pytest.raises(ValueError) as info:
        read_clip_metadata(folder)
    message = str(info.value)
    assert "4 bad rows" in message
    assert "metadata.csv, line 4: ./a.wav is listed on line 2 too, with another chord" in message
    assert "(maj root C bass C there, min root A bass A here)" in message
    assert "line 5: chord_type 'X' is 'X', which takes no root or bass, but root '9'" in message
    assert "line 6: 3 cells but 4 columns" in message and "line 7: 5 cells but 4 columns" in message
    (folder / "metadata.csv").write_text(HEADER + "\n".join(rows[:2] + rows[-1:]) + "\n")
    assert _targets(read_clip_metadata(folder)) == [(2, 0, 0), (2, 0, 0), (0, -1, -1)]


@pytest.mark.parametrize("bad", ["[" * 100_000 + "]" * 100_000, '{"root": ' + "9" * 5000 + "}"])
def test_a_deeply_nested_or_huge_number_line_is_a_bad_row_named_by_its_line(folder, bad):
    """A metadata.jsonl line nested 100,000 deep gave a raw RecursionError, and a 5000-digit number an error
    naming no file or line."""
    rows = [_jsonl([{"file_name": "a.wav", "chord_type": 0, "root": 0, "bass_note": 0}]).strip(), bad]
    (folder / "metadata.jsonl").write_text("\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=r"metadata.jsonl, line 2: not valid JSON"):
        read_clip_metadata(folder)


def test_a_csv_cell_over_128_kb_names_the_file_and_line(folder):
    """A quote left open swallowed the rest of metadata.csv into one cell over csv's limit: a raw
    _csv.Error."""
    text = 'file_name,chord_type,root,bass_note\n"a.wav,0,0,0\n' + "b.wav,0,0,0\n" * 20_000
    (folder / "metadata.csv").write_text(text)
    with pytest.raises(
        ValueError, match=r"metadata.csv, line 2: not valid CSV \(field larger than field limit"
    ):
        read_clip_metadata(folder)
    (folder / "metadata.csv").write_text("x" * 200_000 + ",chord_type,root,bass_note\n")
    with pytest.raises(ValueError, match=r"metadata.csv, line 1: not valid CSV .*a quote left open"):
        read_clip_metadata(folder)


def test_chord_type_names_that_are_numerals_are_names_not_indices(folder):
    """'7' (the dominant seventh, index 10) was read as index 7 (sus4), and '5', '9', '11', '13' likewise,
    silently: a table of names mixed with them trained those clips as other chords."""
    (folder / "metadata.csv").write_text(HEADER + "a.wav,maj,C,C\nb.wav,7,G,G\n")
    assert _targets(read_clip_metadata(folder)) == [(2, 0, 0), (10, 7, 7)]
    rows = [{"file_name": "a.wav", "chord_type": "13", "root": "C", "bass_note": "C"}]
    rows.append({"file_name": "b.wav", "chord_type": 7, "root": 7, "bass_note": 7})  # a JSON number: index
    (folder / "metadata.csv").unlink()
    (folder / "metadata.jsonl").write_text(_jsonl(rows))
    assert _targets(read_clip_metadata(folder)) == [(24, 0, 0), (7, 7, 7)]


def test_a_chord_type_column_is_read_as_indices_only_when_all_of_it_is(folder):
    (folder / "metadata.csv").write_text(HEADER + "a.wav,7,7,7\nb.wav,2.0,0,0\n")  # the guide's indices
    assert _targets(read_clip_metadata(folder)) == [(7, 7, 7), (2, 0, 0)]
    (folder / "metadata.csv").write_text(HEADER + "a.wav,maj,C,C\nb.wav,2,0,0\n")
    with pytest.raises(ValueError, match=r"line 3: chord_type '2' is not one of .*column holds names"):
        read_clip_metadata(folder)
    (folder / "metadata.csv").write_text(HEADER + "a.wav,7,C,C\nb.wav,9,G,G\n")
    with pytest.raises(ValueError, match=r"metadata\.csv: every chord_type is a number that is a type name "):
        read_clip_metadata(folder)
    (folder / "metadata.csv").unlink()
    (folder / "metadata.jsonl").write_text(
        _jsonl([{"file_name": "a.wav", "chord_type": "2", "root": 0, "bass": 0}])
    )
    with pytest.raises(
        ValueError, match=r"line 1: chord_type '2' is not one of .*a JSON number \(2\), not a"
    ):
        read_clip_metadata(folder)


def test_a_clip_name_over_255_bytes_is_a_bad_row_named_by_its_line(folder):
    """It gave a raw OSError (File name too long) from Path.is_file, naming neither file nor line."""
    (folder / "metadata.csv").write_text(HEADER + "a.wav,maj,C,C\n" + "x" * 300 + ".wav,min,A,A\n")
    with pytest.raises(
        ValueError, match=r"metadata\.csv, line 3: the audio path .*x\.wav cannot be used \(File"
    ):
        read_clip_metadata(folder)


def test_a_folder_without_metadata_or_without_rows_is_named_as_such(folder):
    """With no metadata file, a bare IndexError would name nothing; a header alone must not be an empty
    dataset (with clip_seconds given, nothing else would stop it)."""
    with pytest.raises(FileNotFoundError, match=r"no metadata\.csv or metadata\.jsonl describing the clips"):
        read_clip_metadata(folder)
    with pytest.raises(FileNotFoundError, match=r"no metadata\.csv or metadata\.jsonl"):
        ChordClipDataset(folder)
    (folder / "metadata.csv").write_text("file_name,label\n")
    with pytest.raises(ValueError, match=r"metadata\.csv: no clips$"):
        read_clip_metadata(folder)
    with pytest.raises(ValueError, match=r"metadata\.csv: no clips$"):
        ChordClipDataset(folder, clip_seconds=1.0)


def test_a_csv_without_a_root_column_names_the_line_and_the_column(folder):
    (folder / "metadata.csv").write_text("file_name,chord_type,bass_note\na.wav,maj,C\n")
    with pytest.raises(ValueError, match=r"metadata\.csv, line 2: missing root \(or give a Harte 'label'\)"):
        read_clip_metadata(folder)


def test_rows_that_would_train_a_made_up_target_are_refused(folder):
    """An empty chord_type among indices is not 'ignore' (-1); N with a root but no bass (or a bass but no
    root) is still a sign of a vocabulary numbered from maj = 0; a major chord needs its root."""
    rows = ["a.wav,3,2,2", "b.wav,,2,2", "a.wav,0,3,", "b.wav,0,,3"]
    (folder / "metadata.csv").write_text(HEADER + "\n".join(rows) + "\n")
    with pytest.raises(ValueError) as info:
        read_clip_metadata(folder)
    message = str(info.value)
    assert message.startswith("3 bad rows"), message
    assert "line 3: chord_type '' is neither a class index nor a type name" in message
    assert "line 4: chord_type '0' is 'N', which takes no root or bass, but root '3' / bass ''" in message
    assert "line 5: chord_type '0' is 'N', which takes no root or bass, but root '' / bass '3'" in message
    (folder / "metadata.csv").write_text(HEADER + "a.wav,maj,,\n")
    with pytest.raises(ValueError, match=r"metadata\.csv, line 2: chord type 'maj' needs a root$"):
        read_clip_metadata(folder)


def test_a_csv_of_label_rows_and_index_rows_reads_both(folder):
    # The label row's empty chord_type cell must not make the column one of names.
    (folder / "metadata.csv").write_text(
        "file_name,label,chord_type,root,bass_note\na.wav,C:maj,,,\nb.wav,,3,2,2\n"
    )
    assert _targets(read_clip_metadata(folder)) == [(2, 0, 0), (3, 2, 2)]


def test_many_bad_rows_show_the_first_20_and_count_the_rest(folder):
    rows = [f"gone{i}.wav,maj,C,C" for i in range(25)]  # lines 2 to 26
    (folder / "metadata.csv").write_text(HEADER + "\n".join(rows) + "\n")
    with pytest.raises(ValueError) as info:
        read_clip_metadata(folder)
    message = str(info.value)
    assert message.startswith("25 bad rows in the clip metadata:"), message
    assert message.count("does not exist") == 20
    assert "line 21: audio file" in message and "line 22:" not in message
    assert message.endswith("\n  ... and 5 more"), message


def test_label_rows_compare_a_bass_column_and_skip_minus_one(folder):
    (folder / "metadata.csv").write_text("file_name,label,root,bass_note\na.wav,C:maj,-1,-1\n")
    assert _targets(read_clip_metadata(folder)) == [(2, 0, 0)]
    (folder / "metadata.csv").write_text("file_name,label,bass\na.wav,C:maj,E\n")
    with pytest.raises(ValueError, match=r"line 2: label 'C:maj' disagrees with bass 'E' \(label: C\)"):
        read_clip_metadata(folder)


def test_jsonl_blank_lines_with_spaces_or_crlf_are_skipped(folder):
    rows = [{"file_name": "a.wav", "label": "C:maj"}, {"file_name": "b.wav", "label": "A:min"}]
    lines = [json.dumps(rows[0]), "", "   ", json.dumps(rows[1])]
    (folder / "metadata.jsonl").write_bytes("\r\n".join(lines).encode())
    assert _targets(read_clip_metadata(folder)) == [(2, 0, 0), (3, 9, 9)]


def test_the_first_filled_path_column_names_the_clip(folder):
    (folder / "metadata.csv").write_text("file_name,audio,label\n,a.wav,C:maj\n")
    assert [c.audio_path for c in read_clip_metadata(folder)] == [folder / "a.wav"]


def test_one_clip_under_two_spellings_with_two_chords_is_refused(folder):
    (folder / "sub").mkdir()
    (folder / "metadata.csv").write_text("file_name,label\na.wav,C:maj\nsub/../a.wav,A:min\n")
    with pytest.raises(ValueError, match=r"line 3: sub/\.\./a\.wav is listed on line 2 too, with another"):
        read_clip_metadata(folder)


@pytest.mark.parametrize(
    "name, text",
    [
        ("metadata.csv", HEADER + "a.wav,-1,0,0\n"),
        ("metadata.jsonl", _jsonl([{"file_name": "a.wav", "chord_type": -1, "root": 0, "bass_note": 0}])),
    ],
)
def test_a_chord_type_of_minus_one_is_a_bad_row_not_an_ignored_target(folder, name, text):
    """-1 means "none" for a root or bass only: read as the ignore index, a chord_type of -1 would train the
    clip on no chord type at all, without a word."""
    (folder / name).write_text(text)
    line = 2 if name.endswith(".csv") else 1
    with pytest.raises(ValueError, match=rf"{name}, line {line}: chord_type -1 is outside 0\.\.\d+$"):
        read_clip_metadata(folder)


def test_a_folder_or_a_broken_link_listed_as_a_clip_is_a_bad_row_named_by_its_line_and_what_it_is(folder):
    """Taken as a clip, a folder failed only when the audio was loaded, naming no line of the metadata. Then
    a folder named like a clip (`x.wav/`) and a link whose target is gone were both said not to exist, though
    the user sees them there; `audiotrain.audio.load` names both for what they are."""
    (folder / "x.wav").mkdir()
    (folder / "link.wav").symlink_to("gone.wav")
    (folder / "metadata.csv").write_text(HEADER + "a.wav,maj,C,C\nx.wav,min,A,A\nlink.wav,min,A,A\n")
    with pytest.raises(ValueError) as raised:
        ChordClipDataset(folder)
    assert str(raised.value).splitlines()[1:] == [
        f"  {folder / 'metadata.csv'}, line 3: the audio path {folder / 'x.wav'} is a folder, not an audio "
        "file",
        f"  {folder / 'metadata.csv'}, line 4: audio file {folder / 'link.wav'} does not exist (a symlink to "
        "gone.wav, which does not exist)",
    ]


def test_a_clip_outside_the_folder_is_a_bad_row_and_never_read(tmp_path):
    """An absolute path, a '..' or a link leading out of the clip folder named a file elsewhere (a row
    /etc/passwd was opened as audio): nothing outside the folder given is read."""
    outside = tmp_path / "elsewhere.wav"
    sf.write(outside, np.zeros(800, np.float32), 8000)
    folder = tmp_path / "clips"
    folder.mkdir()
    sf.write(folder / "a.wav", np.zeros(800, np.float32), 8000)
    (folder / "link.wav").symlink_to(outside)
    (folder / "inner.wav").symlink_to(folder / "a.wav")  # (a link inside the folder is a clip)
    rows = [f"{outside},maj,C,C", "../elsewhere.wav,maj,C,C", "link.wav,maj,C,C", "inner.wav,maj,C,C"]
    (folder / "metadata.csv").write_text(HEADER + "a.wav,maj,C,C\n" + "\n".join(rows) + "\n")
    with pytest.raises(ValueError) as refused:
        read_clip_metadata(folder)
    message = str(refused.value)
    assert message.startswith("3 bad rows in the clip metadata:")
    assert (
        f"line 3: the audio path {outside} cannot be used (absolute path; file_name must be relative to "
        "the clip folder)" in message
    )
    assert (
        "line 4: the audio path ../elsewhere.wav cannot be used (it leads out of the clip folder, to "
        f"{outside})" in message
    )
    assert (
        f"line 5: the audio path link.wav cannot be used (it leads out of the clip folder, to {outside})"
        in message
    )
    assert "line 6" not in message


@pytest.mark.parametrize("column", ["file_name", "audio", "path"])
def test_each_documented_path_column_names_the_clip(folder, column):
    (folder / "metadata.csv").write_text(f"{column},chord_type,root,bass_note\nb.wav,min,A,A\n")
    clips = read_clip_metadata(folder)
    assert [c.audio_path for c in clips] == [folder / "b.wav"] and _targets(clips) == [(3, 9, 9)]


def test_a_table_with_bass_note_and_bass_columns_reads_the_one_filled_in_and_refuses_two_that_disagree(
    folder,
):
    # bass_note is the guide's name, bass accepted in its place; a row filling in both must agree (the stale
    # one of two would be trained on, unnoticed), and a row filling in one is read from it.
    header = "file_name,chord_type,root,bass_note,bass\n"
    (folder / "metadata.csv").write_text(header + "a.wav,maj,C,E,E\nb.wav,min,A,,C\n")
    assert _targets(read_clip_metadata(folder)) == [(2, 0, 4), (3, 9, 0)]
    (folder / "metadata.csv").write_text(header + "a.wav,min,A,-1,\n")  # (neither: the root's)
    assert _targets(read_clip_metadata(folder)) == [(3, 9, 9)]
    (folder / "metadata.csv").write_text(header + "a.wav,maj,C,E,G\n")
    with pytest.raises(
        ValueError, match=r"metadata\.csv, line 2: bass_note 'E' and bass 'G' disagree; keep one or make them"
    ):
        read_clip_metadata(folder)


def test_a_json_chord_type_name_with_spaces_around_it_is_read(folder):
    # As a CSV cell's: the spaces are layout, not part of the name.
    (folder / "metadata.jsonl").write_text(
        _jsonl([{"file_name": "a.wav", "chord_type": " min ", "root": "A", "bass_note": "A"}])
    )
    assert _targets(read_clip_metadata(folder)) == [(3, 9, 9)]


@pytest.mark.parametrize(
    "arguments, named",
    [
        ({"sr": 0}, r"sr=0\)"),
        ({"sr": -8000}, r"sr=-8000\)"),
        ({"sr": 8000.5}, r"sr=8000\.5\)"),
        ({"sr": float("inf")}, r"sr=inf\)"),
        ({"sr": 8000, "clip_seconds": 0}, r"clip_seconds=0\)"),
        ({"sr": 8000, "clip_seconds": -1.0}, r"clip_seconds=-1\.0\)"),
        ({"sr": 8000, "clip_seconds": 1e-5}, r"clip_seconds=1e-05\).*one sample at sr=8000"),
        ({"sr": 8000, "clip_seconds": float("nan")}, r"clip_seconds=nan\)"),
    ],
)
def test_a_bad_sample_rate_or_clip_length_is_named_when_the_dataset_is_built(folder, arguments, named):
    """They were taken as given and failed at the first item, in a loader worker: sr=0 as a bare
    ZeroDivisionError, clip_seconds=0 as "duration must be a positive number of seconds", an argument the
    user never passed, clip_seconds=NaN as "cannot convert float NaN to integer"."""
    (folder / "metadata.csv").write_text(HEADER + "a.wav,maj,0,0\n")
    with pytest.raises(ValueError, match=rf"ChordClipDataset\({named}"):
        ChordClipDataset(folder, **arguments)
    assert ChordClipDataset(folder, sr=8000, clip_seconds=0.05)[0]["audio"].shape == (400,)


def test_an_index_past_the_clips_or_a_slice_is_named_as_such(folder):
    """A bare "list index out of range", and for a slice "'list' object has no attribute 'audio_path'"."""
    (folder / "metadata.csv").write_text(HEADER + "a.wav,maj,0,0\nb.wav,min,2,2\n")
    dataset = ChordClipDataset(folder, sr=8000)
    with pytest.raises(IndexError, match=r"index 2 out of range for 2 clips"):
        dataset[2]
    with pytest.raises(TypeError, match=r"ChordClipDataset index must be a whole number .*got slice"):
        dataset[0:2]
    assert int(dataset[-1]["root"]) == 2 and int(dataset[np.int64(0)]["root"]) == 0  # as a list's


def test_a_file_column_is_a_clip_path_and_a_table_without_one_is_named_once(folder):
    """A guitarist's ``file,label`` table was refused row by row, "no clip path (one of file_name, audio,
    path)" on each of its 96 lines: ``file`` is a clip path too, and a header with none of them is said
    once, with the columns it has."""
    (folder / "metadata.csv").write_text("file,label\na.wav,A:min\nb.wav,G:7\n")
    assert _targets(read_clip_metadata(folder)) == [(3, 9, 9), (10, 7, 7)]
    (folder / "metadata.csv").write_text("clip,label\na.wav,A:min\nb.wav,G:7\n")
    with pytest.raises(ValueError, match=r"metadata\.csv: no column names the clips' audio files: expected "
                       r"one of file_name, audio, path, file, got clip, label$"):  # fmt: skip
        read_clip_metadata(folder)


def test_a_label_spelled_wrong_on_many_rows_is_said_once_with_its_lines(folder):
    """Guitarist spellings (``Am``, ``G7``) on 30 rows: the 20 rows shown were all ``Am``, and the ``G7``
    rows (what to write for them too) were left in "... and 10 more". Each problem is said once, with its
    lines, and the count is still of rows."""
    rows = ["a.wav,Am"] * 25 + ["b.wav,G7"] * 5 + ["a.wav,Am"]
    (folder / "metadata.csv").write_text("file_name,label\n" + "\n".join(rows) + "\n")
    with pytest.raises(ValueError) as error:
        read_clip_metadata(folder)
    lines = str(error.value).splitlines()
    assert lines[0] == "31 bad rows in the clip metadata:"
    assert len(lines) == 3
    assert "metadata.csv, lines 2-26, 32: invalid chord label 'Am'" in lines[1] and "'A:min'" in lines[1]
    assert "metadata.csv, lines 27-31: invalid chord label 'G7'" in lines[2] and "'G:7'" in lines[2]


def test_a_folder_per_chord_or_a_table_under_another_name_is_named_with_what_to_write(tmp_path):
    """A guitarist's clips in a folder per chord (``Am/``, ``G7/``) beside a ``labels.csv`` were "no
    metadata.csv or metadata.jsonl describing the clips", which said neither that the folder names and the
    table are not read nor what to write."""
    for chord in ("Am", "G7"):
        (tmp_path / chord).mkdir()
        sf.write(tmp_path / chord / "take1.wav", np.zeros(800, np.float32), 8000)
    (tmp_path / "labels.csv").write_text("file,label\nAm/take1.wav,Am\n")
    with pytest.raises(FileNotFoundError) as error:
        read_clip_metadata(tmp_path)
    message = str(error.value)
    assert "labels.csv is not read: only those two names are" in message
    assert "the names of its folders of audio (Am, G7) are not read as chords" in message
    assert "list the clips in metadata.csv, a header file_name,label" in message


def test_labels_that_train_as_another_chord_are_counted_and_named(folder):
    """A clip labelled A:7(b13) trained as A:7, and one of notes no chord type holds as X, with nothing
    said: the per-class scores then counted chords the user never wrote. They are said, counted per label
    with the first line; labels the vocabulary holds say nothing."""
    sf.write(folder / "c.wav", np.zeros(800, np.float32), 8000)
    rows = ["a.wav,A:7(b13)", "c.wav,A:7(b13)", "a.wav,A:7(b13)", 'b.wav,"C:(b2,4)"']
    (folder / "metadata.csv").write_text("file_name,label\n" + "\n".join(rows) + "\n")
    with pytest.warns(UserWarning) as caught:
        read_clip_metadata(folder)
    message = str(caught[0].message)
    assert "metadata.csv: 4 clips train as another chord than their label" in message
    assert "A:7(b13) as A:7 (3 clips, line 2 first); C:(b2,4) as X (1 clip, line 5 first)" in message
    (folder / "metadata.csv").write_text("file_name,label\na.wav,D:maj/3\nb.wav,X\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_clip_metadata(folder)
