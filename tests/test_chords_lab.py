""".lab and JAMS chord annotations: reading, writing and errors that name the file and line."""

import json
import re

from audiotrain.chords.lab import (
    AnnotationError,
    ChordSegment,
    looks_like_lab,
    read_annotation,
    read_jams,
    read_lab,
    write_jams,
    write_lab,
)

import pytest

SEGMENTS = [
    ChordSegment(0.0, 1.5, "N"),
    ChordSegment(1.5, 3.25, "C:maj7/3"),
    ChordSegment(3.25, 4.0, "Bb:min"),
]


def _lab(tmp_path, text, name="song.lab"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_lab_round_trip(tmp_path):
    path = write_lab(tmp_path / "out" / "song.lab", SEGMENTS)
    assert read_lab(path) == SEGMENTS
    assert read_annotation(path) == SEGMENTS


def test_writing_what_the_reader_would_refuse_is_an_error_and_writes_nothing(tmp_path):
    """A lead-sheet 'Am' or a reversed segment was written, and refused far away, when a recipe read it."""
    with pytest.raises(
        AnnotationError, match=r"a\.lab \(not written\), segment 2: .*'Am'.*did you mean 'A:min'"
    ):
        write_lab(tmp_path / "a.lab", [ChordSegment(0, 1, "C:maj"), ChordSegment(1, 2, "Am")])
    with pytest.raises(
        AnnotationError, match=r"b\.jams \(not written\), segment 1: end time 0 is before start"
    ):
        write_jams(tmp_path / "b.jams", [ChordSegment(1, 0, "C:maj")])
    with pytest.raises(
        AnnotationError, match=r"c\.lab \(not written\), segment 2: .*overlaps the previous one"
    ):
        write_lab(tmp_path / "c.lab", [ChordSegment(0, 2, "C:maj"), ChordSegment(1, 3, "G:maj")])
    assert list(tmp_path.iterdir()) == []
    # What the reader takes with allow_gaps is written, labels in the canonical spelling read_lab returns.
    gap = [ChordSegment(0.0, 1.0, "C"), ChordSegment(2.0, 3.0, "A:min")]
    assert (
        write_lab(tmp_path / "gap.lab", gap).read_text()
        == "0.000000\t1.000000\tC:maj\n2.000000\t3.000000\tA:min\n"
    )


def test_what_write_lab_writes_reads_back_or_it_is_refused_before_writing(tmp_path):
    """write_lab checked the segments before rounding their times to the 6 decimals it writes, and wrote
    labels raw: a segment under 0.5 µs became '0.000000 0.000000', an overlap just under the tolerance one
    over it, and a line break inside a degree list split the line; read_lab then refused the file."""
    with pytest.raises(
        AnnotationError, match=r"a\.lab \(not written; times rounded .*\): no chord segments .*zero-length"
    ):
        write_lab(tmp_path / "a.lab", [ChordSegment(0.0, 4e-7, "N")])
    overlap = [ChordSegment(0.0, 1.0000004, "C:maj"), ChordSegment(0.9990005, 2.0, "G:maj")]
    with pytest.raises(AnnotationError, match=r"b\.lab \(not written; .*segment 2: .*overlaps the previous"):
        write_lab(tmp_path / "b.lab", overlap)
    assert list(tmp_path.iterdir()) == []
    # A label with whitespace (a line break in a degree list), or a bass written as a note, is written in the
    # spelling read_lab returns, which mir_eval reads too; a sub-microsecond segment reads back as nothing,
    # warned of.
    spelled = [
        ChordSegment(0.0, 1.0, "C:(3,\n5)"),
        ChordSegment(1.0, 1.0000002, "N"),
        ChordSegment(1.0, 2.5, " A:min/C "),
    ]
    path = write_lab(tmp_path / "c.lab", spelled)
    assert (
        path.read_text()
        == "0.000000\t1.000000\tC:(3,5)\n1.000000\t1.000000\tN\n1.000000\t2.500000\tA:min/b3\n"
    )
    with pytest.warns(UserWarning, match=r"c\.lab: 1 zero-length segment dropped \(line 2 \(N\)\)"):
        assert read_lab(path) == [ChordSegment(0.0, 1.0, "C:(3,5)"), ChordSegment(1.0, 2.5, "A:min/b3")]


def test_segments_given_as_tuples_are_refused_naming_chordsegment(tmp_path):
    """(start, end, label) tuples, as mir_eval's intervals and labels or a CSV's rows give them, ended in an
    AttributeError from inside the checks ("'tuple' object has no attribute 'start'"), naming neither the
    writer nor what it takes; nothing may be written."""
    for write, name in ((write_lab, "write_lab"), (write_jams, "write_jams")):
        with pytest.raises(TypeError) as refused:
            write(tmp_path / f"x.{name}", [ChordSegment(0.0, 1.0, "C:maj"), (1.0, 2.0, "N")])
        assert str(refused.value).startswith(
            f"{name}(path, segments): segment 1 is a tuple ((1.0, 2.0, 'N')), not a ChordSegment; make each "
            "one with audiotrain.chords.ChordSegment(start, end, label)"
        )
    assert list(tmp_path.iterdir()) == []


def test_writing_over_an_existing_annotation_is_refused_unless_replace(tmp_path):
    """write_lab replaced any file silently (a hand-made annotation too), and a folder at the path gave an
    IsADirectoryError naming only an internal temporary file."""
    mine = _lab(tmp_path, "my notes\n", "notes.lab")
    for write, name in ((write_lab, "write_lab"), (write_jams, "write_jams")):
        with pytest.raises(FileExistsError) as refused:
            write(mine, SEGMENTS)
        assert str(refused.value) == (
            f"{name}: {mine} exists already; choose a new path, or pass replace=True to replace it"
        )
        assert mine.read_text() == "my notes\n"
    assert read_lab(write_lab(mine, SEGMENTS, replace=True)) == SEGMENTS
    with pytest.raises(IsADirectoryError) as refused:
        write_lab(tmp_path, SEGMENTS, replace=True)
    assert (
        str(refused.value)
        == f"write_lab: {tmp_path} is a folder; pass a file path such as {tmp_path}/song.lab"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.lab"]


def test_lab_accepts_spaces_comments_blank_lines_and_rounding(tmp_path):
    path = _lab(tmp_path, "\ufeff# comment\r\n0.0 1.0 C\n\n1.0004   2.0\tA:min\n")
    segments = read_lab(path)
    assert [s.label for s in segments] == ["C:maj", "A:min"]  # canonical spelling
    assert segments[1].start == 1.0  # the rounding-sized gap is snapped shut


def test_rounding_can_keep_the_starts_as_written_as_mir_eval_scores_them(tmp_path):
    # Evaluation reads references so: a segment lasts until the next one starts (a gap joins the chord
    # before it, an overlap the chord after it), where training's targets move the next start instead.
    path = _lab(tmp_path, "0.0 1.0 C\n1.0004 2.0 A:min\n1.9995 3.0 G\n")
    assert read_lab(path, keep_starts=True) == [
        ChordSegment(0.0, 1.0004, "C:maj"),
        ChordSegment(1.0004, 1.9995, "A:min"),
        ChordSegment(1.9995, 3.0, "G:maj"),
    ]
    assert read_annotation(path, keep_starts=True) == read_lab(path, keep_starts=True)
    assert [(s.start, s.end) for s in read_lab(path)] == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]
    # A segment shorter than the rounding before the next start would last no time: an error, not a segment.
    short = _lab(tmp_path, "0 1 C\n1 1.0005 G\n1.0 2 F\n", name="short.lab")
    with pytest.raises(
        AnnotationError, match=r"short\.lab, line 3: the segment before this one is shorter than the rounding"
    ):
        read_lab(short, keep_starts=True)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("0.0 1.0 C\n1.0 2.0\n", "line 2: expected 'start end label'"),
        ("0.0 1.0 C\nabc 2.0 C\n", "line 2: start and end must be numbers"),
        # A German or French spreadsheet's export: the comma is named, not only "must be numbers".
        (
            "0,0 1,5 C\n",
            "line 1: start and end must be numbers in seconds, got '0,0 1,5 C' (a decimal comma found",
        ),
        (
            "0 1 C\n1 2,5 G\n",
            "line 2: start and end must be numbers in seconds, got '1 2,5 G' (a decimal comma",
        ),
        # A spreadsheet's CSV export: the separator is named, as a pairs file's error names it.
        (
            "0.0,1.5,C:maj\n",
            "line 1: expected 'start end label' (3 fields), got 1: '0.0,1.5,C:maj' (its fields look separated "
            "by ',': a .lab separates them by tabs or spaces",
        ),
        ("0;1.5;C\n", "got 1: '0;1.5;C' (its fields look separated by ';'"),
        ("0.0, 1.5, C\n", "must be numbers in seconds, got '0.0, 1.5, C' (its fields look separated by ','"),
        ("0.0 1.0 C\n\n1.0 2.0 C:mja\n", "line 3: invalid chord label 'C:mja'"),
        ("-0.5 1.0 C\n", "line 1: negative time"),
        ("0.0 1.0 C\n1.0 0.5 G\n", "line 2: end time 0.5 is before start time 1.0"),
        ("0.0 1.0 C\n0.5 2.0 G\n", "line 2: segment starting at 0.5 overlaps"),
        ("0.0 1.0 C\n1.5 2.0 G\n", "line 2: gap of 0.5000 s"),
        # moved onto the previous end to shut a rounding-sized overlap, it would end before it starts
        ("0 1 C\n0.9995 0.9998 G\n0.9998 2 F\n", "line 2: segment is shorter than the rounding tolerance"),
        ("0.0 -1.0 C\n", "line 1: negative time"),
        ("# only a comment\n", "no chord segments"),
    ],
)
def test_lab_errors_name_file_and_line(tmp_path, text, fragment):
    path = _lab(tmp_path, text)
    with pytest.raises(AnnotationError) as info:
        read_lab(path)
    assert str(path) in str(info.value)
    assert fragment in str(info.value)


def test_a_byte_that_is_not_utf8_is_named_by_its_line(tmp_path):
    """One Latin-1 'é' in a comment (an editor's Windows-1252 save) was "can't decode byte 0xe9 in position
    11": a byte offset, where every other error names the line. Counted after a BOM too."""
    path = tmp_path / "song.lab"
    path.write_bytes(b"\xef\xbb\xbf0 1 C\n# caf\xe9\n1 2 G\n")
    with pytest.raises(AnnotationError) as info:
        read_lab(path)
    assert str(info.value) == (
        f"{path}, line 2: not a UTF-8 text file (byte 0xe9 is not UTF-8; saved as Latin-1 or Windows-1252? "
        "save it as UTF-8)"
    )


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_an_annotation_saved_as_utf16_is_named_so(tmp_path, encoding):
    """Windows PowerShell 5's `>` writes UTF-16: its byte-order mark 0xff 0xfe was called "saved as Latin-1
    or Windows-1252?" in a .lab and Python's "'utf-8' codec can't decode byte 0xff" in a JAMS file."""
    bom = b"\xfe\xff" if encoding.endswith("be") else b""
    lab = tmp_path / "song.lab"
    lab.write_bytes(bom + "0\t1.5\tC:maj\r\n1.5\t3\tN\r\n".encode(encoding))
    jams = tmp_path / "song.jams"
    jams.write_bytes(bom + json.dumps({"annotations": []}).encode(encoding))
    for path, read in ((lab, read_lab), (jams, read_jams), (lab, read_annotation)):
        with pytest.raises(AnnotationError) as info:
            read(path)
        assert str(info.value) == (
            f"{path}: a UTF-16 text file (its first bytes are UTF-16's byte-order mark), not UTF-8: Windows "
            "PowerShell's > and Out-File and Notepad's 'Unicode' write UTF-16; save it as UTF-8"
        )


def test_a_gap_error_names_the_flags_that_read_gaps_as_no_chord(tmp_path):
    """It said "pass allow_gaps", which is no flag of any command."""
    with pytest.raises(AnnotationError, match="gap") as info:
        read_lab(_lab(tmp_path, "0 1 C\n2 3 G\n"))
    flags = "evaluate --allow_gaps, score --allow_gaps, train --data.allow_gaps true, or allow_gaps=True"
    assert flags in str(info.value)


def test_gaps_can_be_filled_with_no_chord_and_are_listed(tmp_path):
    path = _lab(tmp_path, "0.0 1.0 C\n1.5 2.0 G\n2.0 3.0 F\n4.0 5.0 C\n")
    filled = []
    segments = read_lab(path, allow_gaps=True, filled_gaps=filled)
    assert segments == [
        ChordSegment(0, 1, "C:maj"),
        ChordSegment(1.0, 1.5, "N"),
        ChordSegment(1.5, 2.0, "G:maj"),
        ChordSegment(2.0, 3.0, "F:maj"),
        ChordSegment(3.0, 4.0, "N"),
        ChordSegment(4.0, 5.0, "C:maj"),
    ]
    # evaluate names such songs: mir_eval on the file itself reads a gap as the chord before it going on
    assert filled == [(1.0, 1.5), (3.0, 4.0)]


def test_a_jams_annotation_is_read_with_the_options_a_lab_is_read_with(tmp_path):
    """The rounding tolerance, keep_starts (evaluate scores references so) and the list of gaps read as N
    (evaluate names those songs) apply to a JAMS annotation as to a .lab, through read_annotation too."""
    rows = [(0.0, 1.0, "C"), (1.00048828125, 2.0, "A:min"), (2.0078125, 3.0, "G")]  # (exact binary fractions)
    lab = _lab(tmp_path, "".join(f"{start} {end} {label}\n" for start, end, label in rows))
    observations = [{"time": start, "duration": end - start, "value": label} for start, end, label in rows]
    jams = tmp_path / "song.jams"
    jams.write_text(json.dumps({"annotations": [{"namespace": "chord", "data": observations}]}))
    for path in (lab, jams):
        with pytest.raises(AnnotationError, match="gap of 0.0078 s"):
            read_annotation(path)
        assert read_annotation(path, tolerance=0.01) == [
            ChordSegment(0.0, 1.0, "C:maj"),
            ChordSegment(1.0, 2.0, "A:min"),
            ChordSegment(2.0, 3.0, "G:maj"),
        ]
        assert read_annotation(path, tolerance=0.01, keep_starts=True) == [
            ChordSegment(0.0, 1.00048828125, "C:maj"),
            ChordSegment(1.00048828125, 2.0078125, "A:min"),
            ChordSegment(2.0078125, 3.0, "G:maj"),
        ]
        filled = []
        assert read_annotation(path, allow_gaps=True, filled_gaps=filled)[2:] == [
            ChordSegment(2.0, 2.0078125, "N"),
            ChordSegment(2.0078125, 3.0, "G:maj"),
        ]
        assert filled == [(2.0, 2.0078125)], path


def test_jams_round_trip_and_old_layout(tmp_path):
    path = write_jams(tmp_path / "song.jams", SEGMENTS)
    assert read_jams(path) == SEGMENTS
    assert read_annotation(path) == SEGMENTS
    # The song's length and name, which the jams library and other JAMS tools read.
    assert json.loads(path.read_text())["file_metadata"] == {"duration": 4.0, "title": "song"}
    old = {
        "annotations": [
            {"namespace": "beat", "data": []},
            {
                "namespace": "chord_harte",
                "data": {"time": [0.0, 1.0], "duration": [1.0, 1.0], "value": ["C", "G"]},
            },
        ]
    }
    (tmp_path / "old.jams").write_text(json.dumps(old))
    assert [s.label for s in read_jams(tmp_path / "old.jams")] == ["C:maj", "G:maj"]


def test_jams_observations_out_of_time_order_are_read_in_time_order(tmp_path):
    """JAMS does not require its observations in time order (the jams library sorts them): written G, then
    C before it, the song reads C then G, not 'segments out of order'."""
    observations = [
        {"time": 2.0, "duration": 2.0, "value": "G:maj", "confidence": None},
        {"time": 0.0, "duration": 2.0, "value": "C:maj", "confidence": None},
    ]
    (tmp_path / "x.jams").write_text(
        json.dumps({"annotations": [{"namespace": "chord", "data": observations}]})
    )
    assert read_jams(tmp_path / "x.jams") == [
        ChordSegment(0.0, 2.0, "C:maj"),
        ChordSegment(2.0, 4.0, "G:maj"),
    ]


def test_jams_errors_name_file_and_observation(tmp_path):
    doc = {
        "annotations": [
            {
                "namespace": "chord",
                "data": [
                    {"time": 0, "duration": 1, "value": "C"},
                    {"time": 1, "duration": 1, "value": "Q:maj"},
                ],
            }
        ]
    }
    path = tmp_path / "bad.jams"
    path.write_text(json.dumps(doc))
    with pytest.raises(
        AnnotationError, match=r"bad.jams, annotation 0, observation 1: invalid chord label 'Q:maj'"
    ):
        read_jams(path)
    # Not a label at all: an AnnotationError naming it (a scan skips the song), not a TypeError ending the run.
    for value in (None, {"root": "C"}):
        doc["annotations"][0]["data"][1]["value"] = value
        path.write_text(json.dumps(doc))
        with pytest.raises(
            AnnotationError, match=r"bad.jams, annotation 0, observation 1: chord value must be a string"
        ):
            read_jams(path)
    path.write_text(json.dumps({"annotations": [{"namespace": "beat", "data": []}]}))
    with pytest.raises(AnnotationError, match="no annotation in namespace chord"):
        read_jams(path)
    path.write_text("{not json")
    with pytest.raises(AnnotationError, match="not valid JSON"):
        read_jams(path)


@pytest.mark.parametrize("field", ["time", "duration"])
@pytest.mark.parametrize("bad", ["1" + "0" * 400, "true"])
def test_a_jams_time_too_large_for_a_float_or_a_bool_is_refused_naming_the_observation(tmp_path, field, bad):
    """A 401-digit integer is valid JSON; float() raised a raw OverflowError that killed a whole training
    run instead of skipping the song. `true` read as 1 second."""
    observation = {"time": "0", "duration": "1", "value": '"C:maj"'} | {field: bad}
    data = ", ".join(f'"{key}": {value}' for key, value in observation.items())
    path = tmp_path / "huge.jams"
    path.write_text('{"annotations": [{"namespace": "chord", "data": [{' + data + "}]}]}")
    with pytest.raises(
        AnnotationError,
        match=r"huge.jams, annotation 0, observation 0: expected numeric 'time' and 'duration'",
    ):
        read_jams(path)


def test_unknown_suffix(tmp_path):
    with pytest.raises(AnnotationError, match="unknown annotation format '.csv'"):
        read_annotation(tmp_path / "x.csv")


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
def test_lab_rejects_nan_and_infinite_times_naming_the_line(tmp_path, bad):
    """NaN compares False with everything: unchecked, a NaN end passed every test and silently
    labelled the rest of the song N."""
    path = _lab(tmp_path, f"0 1 C\n2 {bad} A:min\n3 4 F\n".replace("2 ", "1 ", 1))
    with pytest.raises(AnnotationError, match=r"line 2: times must be finite"):
        read_lab(path)
    # A start too: not "segments out of order" naming the line after it.
    with pytest.raises(AnnotationError, match=r"line 2: times must be finite"):
        read_lab(_lab(tmp_path, f"0 1 C\n{bad} 2 A:min\n3 4 F\n"))


def test_zero_length_segments_are_dropped(tmp_path):
    from audiotrain.chords import AnnotationWarning

    path = _lab(tmp_path, "0 1 C\n1.0 1.0 N\n1 2 G\n")
    with pytest.warns(AnnotationWarning, match=r"1 zero-length segment dropped \(line 2 \(N\)\)"):
        assert [(s.start, s.end, s.label) for s in read_lab(path)] == [(0, 1, "C:maj"), (1, 2, "G:maj")]
    # The start after one, rounded to just before it, is not out of order.
    path = _lab(tmp_path, "0 1 C\n1.0 1.0 N\n0.9996 2 G\n")
    with pytest.warns(AnnotationWarning, match=r"1 zero-length segment dropped \(line 2 \(N\)\)"):
        assert [(s.start, s.end, s.label) for s in read_lab(path)] == [(0, 1, "C:maj"), (1, 2, "G:maj")]


def test_an_annotation_whose_every_segment_is_zero_length_is_an_error_naming_the_file(tmp_path):
    """It read as an empty annotation: no error, then a raw IndexError in training and an error naming
    no file in evaluate."""
    path = _lab(tmp_path, "0.0\t0.0\tC:maj\n", name="zero.lab")
    with pytest.raises(
        AnnotationError, match=r"zero.lab: no chord segments \(its one segment is zero-length\)"
    ):
        read_lab(path)
    _lab(tmp_path, "0 0 C\n2 2 G\n", name="zeros.lab")
    with pytest.raises(
        AnnotationError, match=r"zeros.lab: no chord segments \(all 2 segments are zero-length\)"
    ):
        read_lab(tmp_path / "zeros.lab")
    doc = {"annotations": [{"namespace": "chord", "data": [{"time": 1.0, "duration": 0.0, "value": "C"}]}]}
    (tmp_path / "zero.jams").write_text(json.dumps(doc))
    with pytest.raises(AnnotationError, match=r"zero.jams: no chord segments"):
        read_jams(tmp_path / "zero.jams")


def test_labels_come_back_in_a_spelling_mir_eval_parses(tmp_path):
    """Notes as basses, spaces in degree lists and bare roots parse here; mir_eval rejects them as
    written, which used to crash the final scoring of a whole training run."""
    import mir_eval

    labels = ["C/E", "E:min/G", "D/F#", "Bb", "A:min7/b7", "E#:hdim7", "C:(1,3,5)", "N", "X"]
    path = _lab(tmp_path, "".join(f"{i} {i + 1} {label}\n" for i, label in enumerate(labels)))
    read = [s.label for s in read_lab(path)]
    assert read[:4] == ["C:maj/3", "E:min/b3", "D:maj/3", "Bb:maj"]
    jams = {"annotations": [{"namespace": "chord", "data": [
        {"time": 0.0, "duration": 1.0, "value": "C:maj(9, 11)"}, {"time": 1.0, "duration": 1.0, "value": "A:min "}]}]}  # fmt: skip
    (tmp_path / "spaces.jams").write_text(json.dumps(jams))
    spaced = [s.label for s in read_jams(tmp_path / "spaces.jams")]
    assert spaced == ["C:maj(9,11)", "A:min"]
    read += spaced
    for label in read:
        mir_eval.chord.encode(label)  # raises InvalidChordException on a label it cannot parse
    # The same chords as mir_eval would understand them, root and bass included.
    assert mir_eval.chord.encode(read[1])[2] == 3 and mir_eval.chord.encode(read[2])[0] == 2


def test_jams_with_a_bom_several_annotators_or_ragged_lists(tmp_path):
    from audiotrain.chords import AnnotationWarning

    document = {
        "annotations": [
            {"namespace": "chord", "annotation_metadata": {"annotator": {"name": "ann1"}},
             "data": [{"time": 0.0, "duration": 1.0, "value": "N", "confidence": None}]},
            {"namespace": "chord", "annotation_metadata": {"annotator": {"name": "ann2"}},
             "data": [{"time": 0.0, "duration": 1.0, "value": "C:maj", "confidence": None}]},
        ]
    }  # fmt: skip
    path = tmp_path / "two.jams"
    path.write_text("\ufeff" + json.dumps(document), encoding="utf-8")
    with pytest.warns(
        AnnotationWarning, match=r"2 chord annotations \(chord by ann1, chord by ann2\); using the first"
    ):
        assert [s.label for s in read_jams(path)] == ["N"]
    assert [s.label for s in read_jams(path, annotation_index=1)] == ["C:maj"]
    with pytest.raises(AnnotationError, match=r"two.jams: annotation -1 does not exist \(2 annotations\)"):
        read_jams(path, annotation_index=-1)  # not Python's last one

    ragged = {
        "annotations": [
            {"namespace": "chord", "data": {"time": [0, 1, 2], "duration": [1, 1], "value": ["C", "G", "F"]}}
        ]
    }
    (tmp_path / "ragged.jams").write_text(json.dumps(ragged))
    with pytest.raises(AnnotationError, match="lists of one length"):
        read_jams(tmp_path / "ragged.jams")


@pytest.mark.parametrize(
    "text, later, earlier",
    [
        ("0.0 1.0 C\n2.0 3.0 G\n1.0 2.0 A:min\n", "line 3", "line 2"),  # would read as an overlap
        ("0.0 1.0 C\n\n# moved\n3.0 4.0 G\n1.0 3.0 F\n", "line 5", "line 4"),
        ("2.0 3.0 G\n0.0 2.0 C\n", "line 2", "line 1"),  # would read as an overlap too
    ],
)
def test_unsorted_lab_segments_are_reported_as_out_of_order_with_both_lines(tmp_path, text, later, earlier):
    path = _lab(tmp_path, text)
    with pytest.raises(AnnotationError) as info:
        read_lab(path)
    message = str(info.value)
    assert str(path) in message and "out of order" in message
    assert f"{later}:" in message and earlier in message
    assert "overlaps" not in message and "gap" not in message


def test_lab_label_is_the_rest_of_the_line_and_harte_decides(tmp_path):
    """Times are the first two whitespace-separated fields; the label is the rest of the line, stripped."""
    path = _lab(tmp_path, "0.0\t1.5\tC:(3, 5)  \n1.5 2.0 A:min\n2.0\t3.0\t C:min7 \n")
    assert read_lab(path) == [
        ChordSegment(0.0, 1.5, "C:(3,5)"),
        ChordSegment(1.5, 2.0, "A:min"),
        ChordSegment(2.0, 3.0, "C:min7"),
    ]
    for label in ("C:maj 7", "C: maj", "N. C."):
        path = _lab(tmp_path, f"0.0 1.0 C\n1.0\t2.0\t{label}\n", name="bad.lab")
        with pytest.raises(AnnotationError) as info:
            read_lab(path)
        # The whole label reaches the Harte parser, whose error names the file and the line.
        assert f"bad.lab, line 2: invalid chord label {label!r}" in str(info.value)


@pytest.mark.parametrize(
    "text, fields",
    [
        ("0.0\t1.5\tN\t0.9\n1.5\t3.0\tC:maj\t1.0\n", "got 4: '0.0', '1.5', 'N', '0.9'"),
        ("0.0 1.5 N 0.9\n1.5 3.0 C:maj 1\n", "got 4: '0.0', '1.5', 'N', '0.9'"),
        (
            "0.0\t1.5\tN\t0.9\tpiano\n1.5\t3.0\tC:maj\t1.0\tpiano\n",
            "got 5: '0.0', '1.5', 'N', '0.9', 'piano'",
        ),
    ],
)
def test_a_lab_line_with_a_field_after_its_label_is_refused_as_too_many_fields(tmp_path, text, fields):
    """A confidence column was read as part of the label: "invalid chord label 'N\\t0.9'" on every line."""
    path = _lab(tmp_path, text, name="conf.lab")
    with pytest.raises(AnnotationError) as info:
        read_lab(path)
    message = str(info.value)
    assert message.startswith(f"{path}, line 1: expected 'start end label' (3 fields), {fields}. ")
    assert message.endswith("here, and on 1 more line like it") and "invalid chord label" not in message


def test_jamz_is_read_like_jams(tmp_path):
    import gzip

    plain = write_jams(tmp_path / "song.jams", SEGMENTS)
    packed = tmp_path / "song.jamz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert read_jams(packed) == SEGMENTS
    assert read_annotation(packed) == SEGMENTS
    assert read_annotation(write_jams(tmp_path / "w.jamz", SEGMENTS)) == SEGMENTS  # written gzipped
    # The same checks: an invalid label names the file and the observation.
    doc = json.loads(plain.read_text())
    doc["annotations"][0]["data"][1]["value"] = "Q:maj"
    packed.write_bytes(gzip.compress(json.dumps(doc).encode()))
    with pytest.raises(AnnotationError, match=r"song.jamz, annotation 0, observation 1: invalid chord label"):
        read_annotation(packed)
    packed.write_bytes(plain.read_bytes())  # not compressed
    with pytest.raises(AnnotationError, match=r"song.jamz: a .jamz file must be gzip-compressed JSON"):
        read_annotation(packed)
    packed.write_bytes(gzip.compress(plain.read_bytes())[:30])  # truncated
    with pytest.raises(AnnotationError, match="song.jamz"):
        read_annotation(packed)


def test_a_jamz_that_expands_past_the_limit_is_refused_without_expanding_it(tmp_path):
    """A 1.5 MB .jamz of a valid JAMS followed by 1.5 GB of whitespace took 32 s and 3.2 GB, and was accepted.
    Here 200 MB of spaces (200 KB gzipped): refused naming the file, having decompressed at most the limit."""
    import tracemalloc
    import zlib

    from audiotrain.chords.lab import MAX_JAMZ_BYTES

    plain = write_jams(tmp_path / "song.jams", SEGMENTS).read_bytes()
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    chunks = [packer.compress(plain)] + [packer.compress(b" " * 2**20) for _ in range(200)]
    bomb = tmp_path / "bomb.jamz"
    bomb.write_bytes(b"".join(chunks) + packer.flush())
    assert bomb.stat().st_size < 1_000_000
    tracemalloc.start()
    try:
        with pytest.raises(AnnotationError, match=r"bomb.jamz: decompresses to more than 64 MB"):
            read_annotation(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * MAX_JAMZ_BYTES
    # Whitespace up to the limit is still valid JSON, and reads.
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb.write_bytes(packer.compress(plain + b" " * (MAX_JAMZ_BYTES - len(plain))) + packer.flush())
    assert read_annotation(bomb) == SEGMENTS


def test_every_invalid_label_of_a_file_is_named_with_its_line_and_harte_spelling(tmp_path):
    """A file written with lead-sheet names is fixed in one go: every bad line is listed, not only the first."""
    text = "0.0 3.0 Am\n3.0 6.0 G7\n# a comment\n6.0 9.0 Cmaj7\n9.0 15.0 F#m7b5\n15 16 C:mja\n16 17 Bb\n"
    with pytest.raises(AnnotationError) as info:
        read_lab(_lab(tmp_path, text))
    message = str(info.value)
    assert "song.lab: 5 chord labels are not Harte syntax" in message, message
    for line in (
        "line 1: 'Am' is 'A:min' in Harte spelling",
        "line 2: 'G7' is 'G:7' in Harte spelling",
        "line 4: 'Cmaj7' is 'C:maj7' in Harte spelling",
        "line 5: 'F#m7b5' is 'F#:hdim7' in Harte spelling",
        "line 6: invalid chord label 'C:mja': unknown shorthand 'mja'",
    ):
        assert line in message, message
    assert "line 7" not in message  # 'Bb' is Harte (B-flat major)
    # Many: the first ten, and a count of the rest.
    many = "".join(f"{k}.0 {k + 1}.0 Am\n" for k in range(25))
    with pytest.raises(AnnotationError) as info:
        read_lab(_lab(tmp_path, many))
    message = str(info.value)
    assert "25 chord labels" in message and "line 10: 'Am'" in message and "line 11" not in message
    assert "... and 15 more" in message


def test_a_label_of_a_root_then_a_minus_is_listed_with_both_readings(tmp_path):
    """ChoCo's Wikifonia JAMS name chords as music21 does, where '-' is a flat ('E-' is E-flat major, 'B-7'
    B-flat 7): the scan's list gave them as 'E:min' and 'B:min7' only, and a fix by sed made them wrong."""
    text = "0.0 3.0 E-\n3.0 6.0 B-7\n6.0 9.0 Am\n"
    with pytest.raises(AnnotationError) as info:
        read_lab(_lab(tmp_path, text))
    message = str(info.value)
    for line in (
        "line 1: 'E-' is 'E:min' (jazz minus) or 'Eb:maj' (music21 flat) in Harte spelling",
        "line 2: 'B-7' is 'B:min7' (jazz minus) or 'Bb:7' (music21 flat) in Harte spelling",
        "line 3: 'Am' is 'A:min' in Harte spelling",
    ):
        assert line in message, message


def test_a_jams_of_thousands_of_chord_annotations_names_ten_and_counts_the_rest(tmp_path):
    """200,000 chord annotations made one warning line of 2.8 MB listing every one."""
    from audiotrain.chords import AnnotationWarning

    one = {"namespace": "chord", "data": [{"time": 0.0, "duration": 1.0, "value": "N", "confidence": None}]}
    path = tmp_path / "many.jams"
    path.write_text(json.dumps({"annotations": [one] * 2000}))
    with pytest.warns(AnnotationWarning) as caught:
        read_jams(path)
    message = str(caught[0].message)
    assert "2000 chord annotations (" in message and " and 1990 more); using the first" in message
    assert "(chord #0, chord #1, " in message  # counted from 0, as chord_annotation counts
    assert len(message) < 500
    with pytest.raises(AnnotationError, match=r"asked for, but the file holds 2000 \(0: .* and 1990 more\)"):
        read_jams(path, chord_annotation=5000)


def test_a_jams_0_1_file_is_refused_naming_its_layout_and_what_to_use(tmp_path):
    """marl/jams' data/datasets keep many chord sets in the JAMS 0.1 layout (a top-level 'chord' list): such
    a file was refused with "is this a JAMS file?", which doubts the file rather than its version."""
    old = {
        "sandbox": {"id": "4"},
        "chord": [
            {
                "annotation_metadata": {"corpus": "Billboard-Chords", "version": "2.0.1"},
                "data": [
                    {"start": {"value": 0.0}, "end": {"value": 2.1}, "label": {"value": "N"}},
                    {"start": {"value": 2.1}, "end": {"value": 5.0}, "label": {"value": "Ab:maj"}},
                ],
            }
        ],
    }
    path = tmp_path / "0004.jams"
    path.write_text(json.dumps(old))
    with pytest.raises(AnnotationError) as info:
        read_annotation(path)
    message = str(info.value)
    assert "a JAMS 0.1 file (its chords in a top-level 'chord' list" in message, message
    assert "Use the dataset's .lab files" in message and "is this a JAMS file" not in message


def test_billboards_salami_chords_txt_is_named_as_such_and_not_taken_for_a_lab(tmp_path):
    """McGill Billboard's salami_chords.txt read as a .lab failed on "line 6: expected 'start end label' (3
    fields), got 2: '0.0\\tsilence'"; its format is named now, with the .lab reductions to use instead."""
    text = (
        "# title: I Don't mind\n# artist: James Brown\n# metre: 6/8\n# tonic: C\n\n0.0\tsilence\n"
        "7.3469387e-2\tA, intro, | A:min | A:min | C:maj | C:maj |\n"
    )
    path = _lab(tmp_path, text, "salami_chords.txt")
    with pytest.raises(
        AnnotationError, match=r"salami_chords\.txt: McGill Billboard's salami_chords\.txt format"
    ):
        read_annotation(path)
    assert not looks_like_lab(path)
    assert looks_like_lab(write_lab(tmp_path / "x.txt", SEGMENTS))
    assert not looks_like_lab(_lab(tmp_path, "Recorded live.\n", "notes.txt"))
    assert not looks_like_lab(_lab(tmp_path, "1 Intro riff\n2 Verse, slower\n", "takes.txt"))
    # A .lab whose comment names its song is no salami_chords.txt: it has no bars.
    titled = _lab(tmp_path, "# title: My song\n0.0 1.0 C\n1.0 2.0 G\n", "titled.lab")
    assert looks_like_lab(titled) and [s.label for s in read_annotation(titled)] == ["C:maj", "G:maj"]
    assert looks_like_lab(_lab(tmp_path, "# a comment\n0.0 1.0 Am\n", "lead.txt"))  # (its labels: read_lab's)


@pytest.mark.parametrize(
    "text",
    [
        # Chordino's chords from Sonic Annotator's lab writer
        "0.000000000\tN\n0.371519274\tC\n2.414965986\tAm\n",
        "0.000000000 N\n0.371519274 C\n",
        '0.000000000,"N"\n0.371519274,"C"\n',  # Sonic Visualiser's CSV export of a time-instant layer
        "0.0;N\n0.37;C:maj\n",
    ],
)
def test_chordinos_time_label_instants_are_named_with_how_to_write_them_as_a_lab(tmp_path, text):
    """Chordino's chords as Sonic Visualiser or Sonic Annotator export them (a time and a label a line, each
    chord lasting until the next) were "line 1: expected 'start end label' (3 fields), got 2" (or got 1),
    which said neither what the file is nor what to do."""
    with pytest.raises(AnnotationError) as info:
        read_lab(_lab(tmp_path, text, "song.lab"))
    message = str(info.value)
    assert "song.lab, line 1: expected 'start end label' (3 fields)" in message, message
    assert "a 'time label' instant" in message and "Chordino" in message, message
    assert "each chord lasting until the next one starts" in message, message


def test_a_zero_length_segment_is_dropped_with_a_warning_naming_its_line_and_label(tmp_path):
    """Audacity's point label after region labels (`4.0 4.0 G:maj`) labels no time: it was dropped without a
    word, the G:maj lost."""
    from audiotrain.chords import AnnotationWarning, read_annotation

    path = tmp_path / "audacity.lab"
    path.write_text("0.0\t4.0\tC:maj\n4.0\t4.0\tG:maj\n4.0\t6.0\tA:min\n6.0\t6.0\tF:maj\n")
    with pytest.warns(AnnotationWarning) as caught:
        segments = read_annotation(path)
    assert segments == [ChordSegment(0.0, 4.0, "C:maj"), ChordSegment(4.0, 6.0, "A:min")]
    message = str(caught[0].message)
    assert f"{path}: 2 zero-length segments dropped (line 2 (G:maj), line 4 (F:maj))" in message
    assert "give it an end time" in message


@pytest.mark.parametrize(
    "text",
    ['"/home/me/take1.wav",0.000000000,"N"\n,0.371519274,"C"\n', ',0.371519274,"C"\n,2.41,"Am"\n'],
)
def test_sonic_annotators_csv_with_its_file_name_column_is_named_as_chordino_instants(tmp_path, text):
    """Sonic Annotator's CSV writer puts the audio file's name before the first chord's time (and an empty
    cell before the others) unless --csv-omit-filename: such a file was "got 1" with no word of what it is."""
    with pytest.raises(AnnotationError) as info:
        read_lab(_lab(tmp_path, text, "take1.lab"))
    message = str(info.value)
    assert "a 'time label' instant" in message and "Chordino" in message, message
    assert "--csv-omit-filename" in message, message


def test_billboards_pause_marker_in_a_lab_is_named_with_its_harte_spelling(tmp_path):
    """A .lab converted by hand from Billboard's salami_chords.txt keeps its '&pause' (a pause: no chord);
    the error said "invalid chord label '&pause': expected 'N', 'X' or root...", not that it is 'N'."""
    path = _lab(tmp_path, "0.0 1.5 C:maj\n1.5 2.0 &pause\n2.0 4.0 G:maj\n", "0003.lab")
    with pytest.raises(AnnotationError, match=r"line 2: invalid chord label '&pause'.*did you mean 'N'\?"):
        read_annotation(path)


def test_segments_given_before_the_path_are_refused_naming_the_order(tmp_path):
    """README's ensemble note names `write_lab` without its order: write_lab(segments, "ens.lab") (the order
    of predict's `segments, path` thinking) ended in pathlib's "expected str, bytes or os.PathLike object,
    not list", a traceback from inside pathlib."""
    for write, name in ((write_lab, "write_lab"), (write_jams, "write_jams")):
        with pytest.raises(TypeError) as refused:
            write(SEGMENTS, tmp_path / "song.lab")
        assert str(refused.value) == (
            f"{name}(path, segments): the path comes first, a str or Path; got a list as the path"
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("label", "meant"), [("n", "N"), ("x", "X")])
def test_a_lower_case_n_or_x_is_refused_with_its_upper_case_spelling(tmp_path, label, meant):
    # (mir_eval refuses 'n' too: the label stays an error, but the error says what was meant.)
    path = _lab(tmp_path, f"0.0 2.0 C:maj\n2.0 4.0 {label}\n")
    with pytest.raises(
        AnnotationError, match=rf"line 2: invalid chord label '{label}'.*did you mean '{meant}'\?"
    ):
        read_lab(path)


@pytest.mark.parametrize(
    ("label", "said"),
    [("C:()", r"empty degree list '\(\)'"), ("C:maj(9,)", r"an empty degree in '\(9,\)'"),
     ("C:maj(,b7)", r"an empty degree in '\(,b7\)'")],
)  # fmt: skip
def test_an_empty_degree_list_or_degree_is_named_as_such(tmp_path, label, said):
    path = _lab(tmp_path, f"0.0 2.0 {label}\n")
    with pytest.raises(AnnotationError, match=rf"line 1: invalid chord label '{re.escape(label)}': {said}"):
        read_lab(path)


@pytest.mark.parametrize("label", ["C:maj7(", "C:min(b7", "C:maj7)", "C:maj7(9))"])
def test_a_label_whose_parentheses_do_not_pair_is_told_so(tmp_path, label):
    path = _lab(tmp_path, f"0.0 2.0 {label}\n")
    with pytest.raises(
        AnnotationError, match=rf"line 1: invalid chord label '{re.escape(label)}': .*parentheses"
    ):
        read_lab(path)


@pytest.mark.parametrize(("label", "meant"), [("C :maj", "C:maj"), ("C:maj7 (9)", "C:maj7(9)")])
def test_a_label_with_a_space_inside_is_refused_with_its_spelling_without_it(tmp_path, label, meant):
    path = _lab(tmp_path, f"0.0\t2.0\t{label}\n")
    with pytest.raises(AnnotationError, match=rf"line 1: .*did you mean '{re.escape(meant)}'\?"):
        read_lab(path)


@pytest.mark.parametrize(
    ("label", "meant"),
    [("C:min7/e", "C:min7/3"), ("G:7/f", "G:7/b7"), ("C:hdim", "C:hdim7"), ("A:hdim/c", "A:hdim7/b3")],
)
def test_a_lower_case_note_bass_or_hdim_without_its_7_is_refused_with_its_harte_spelling(
    tmp_path, label, meant
):
    path = _lab(tmp_path, f"0.0 2.0 {label}\n")
    with pytest.raises(AnnotationError, match=rf"line 1: .*did you mean '{re.escape(meant)}'\?"):
        read_lab(path)


def test_write_lab_and_jams_read_a_leading_tilde_as_the_home_folder(tmp_path, monkeypatch):
    """`write_lab("~/labs/song.lab", ...)` made a folder named `~` in the working directory and wrote there,
    where export_history and checkpoint paths take `~` as the home folder; `read_lab("~/labs/song.lab")`
    then said the file does not exist."""
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    segments = [ChordSegment(0.0, 1.0, "C:maj")]
    assert write_lab("~/labs/song.lab", segments) == home / "labs" / "song.lab"
    assert write_jams("~/labs/song.jams", segments) == home / "labs" / "song.jams"
    assert [s.label for s in read_lab("~/labs/song.lab")] == ["C:maj"]
    assert [s.label for s in read_jams("~/labs/song.jams")] == ["C:maj"]
    assert [s.label for s in read_annotation("~/labs/song.lab")] == ["C:maj"]
    assert not list(work.iterdir())


def test_segments_as_lab_and_jams_text_in_memory_are_what_the_writers_write(tmp_path):
    # An app serving transcriptions (an HTTP reply) wants the text, not a file: the package exports it.
    from audiotrain.chords import jams_text, lab_text, write_jams, write_lab

    segments = [
        ChordSegment(0.0, 1.5, "N"),
        ChordSegment(1.5, 4.25, "C:maj7/3"),
        ChordSegment(4.25, 6.0, "A:min"),
    ]
    assert lab_text(segments) == write_lab(tmp_path / "song.lab", segments).read_text(encoding="utf-8")
    written = write_jams(tmp_path / "song.jams", segments).read_text(encoding="utf-8")
    assert jams_text(segments, title="song") == written
    assert json.loads(written)["annotations"][0]["data"][1]["value"] == "C:maj7/3"
