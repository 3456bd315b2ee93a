""".lab and JAMS chord annotations: reading, writing and errors that name the file and line."""

import json

from audiotrain.chords.lab import (
    AnnotationError,
    ChordSegment,
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


def test_lab_accepts_spaces_comments_blank_lines_and_rounding(tmp_path):
    path = _lab(tmp_path, "\ufeff# comment\r\n0.0 1.0 C\n\n1.0004   2.0\tA:min\n")
    segments = read_lab(path)
    assert [s.label for s in segments] == ["C", "A:min"]
    assert segments[1].start == 1.0  # the rounding-sized gap is snapped shut


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("0.0 1.0 C\n1.0 2.0\n", "line 2: expected 'start end label'"),
        ("0.0 1.0 C\nabc 2.0 C\n", "line 2: start and end must be numbers"),
        ("0.0 1.0 C\n\n1.0 2.0 C:mja\n", "line 3: invalid chord label 'C:mja'"),
        ("-0.5 1.0 C\n", "line 1: negative time"),
        ("0.0 1.0 C\n1.0 0.5 G\n", "line 2: end time 0.5 is not after start time 1.0"),
        ("0.0 1.0 C\n0.5 2.0 G\n", "line 2: segment starting at 0.5 overlaps"),
        ("0.0 1.0 C\n1.5 2.0 G\n", "line 2: gap of 0.5000 s"),
        ("# only a comment\n", "no chord segments"),
    ],
)
def test_lab_errors_name_file_and_line(tmp_path, text, fragment):
    path = _lab(tmp_path, text)
    with pytest.raises(AnnotationError) as info:
        read_lab(path)
    assert str(path) in str(info.value)
    assert fragment in str(info.value)


def test_gaps_can_be_filled_with_no_chord(tmp_path):
    path = _lab(tmp_path, "0.0 1.0 C\n1.5 2.0 G\n")
    segments = read_lab(path, allow_gaps=True)
    assert segments == [ChordSegment(0, 1, "C"), ChordSegment(1.0, 1.5, "N"), ChordSegment(1.5, 2.0, "G")]


def test_jams_round_trip_and_old_layout(tmp_path):
    path = write_jams(tmp_path / "song.jams", SEGMENTS)
    assert read_jams(path) == SEGMENTS
    assert read_annotation(path) == SEGMENTS
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
    assert [s.label for s in read_jams(tmp_path / "old.jams")] == ["C", "G"]


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
    path.write_text(json.dumps({"annotations": [{"namespace": "beat", "data": []}]}))
    with pytest.raises(AnnotationError, match="no annotation in namespace chord"):
        read_jams(path)
    path.write_text("{not json")
    with pytest.raises(AnnotationError, match="not valid JSON"):
        read_jams(path)


def test_unknown_suffix(tmp_path):
    with pytest.raises(AnnotationError, match="unknown annotation format '.csv'"):
        read_annotation(tmp_path / "x.csv")
