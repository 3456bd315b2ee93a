"""`costliest_errors`: where a chord score is lost, per reference chord and reading."""

from audiotrain.chords.lab import ChordSegment as Seg
from audiotrain.metrics.chord_errors import costliest_errors, format_errors
from audiotrain.metrics.chord_scores import score_songs

import pytest

REFERENCE = [Seg(0, 2, "C:maj"), Seg(2, 4, "A:min/b3"), Seg(4, 6, "F:maj"), Seg(6, 7, "N")]
ESTIMATE = [
    Seg(0, 1.5, "C:maj"),
    Seg(1.5, 2.0, "F:maj"),  # a late boundary: 0.5 s of C read as F
    Seg(2, 4, "A:min"),  # the right chord over the wrong bass
    Seg(4, 4.5, "D:min"),
    Seg(4.5, 5, "F:maj"),
    Seg(5, 6, "D:min"),  # F read as D:min in two pieces: one line
    Seg(6, 7, "N"),
]


def test_errors_are_summed_per_reference_chord_and_reading_most_first():
    errors = costliest_errors({"song": (REFERENCE, ESTIMATE)}, "majmin")
    assert [(e.reference, e.start, e.estimate, e.seconds) for e in errors] == [
        ("F:maj", 4.0, "D:min", 1.5),
        ("C:maj", 0.0, "F:maj", 0.5),
    ]
    assert errors[0].share == pytest.approx(1.5 / 7) and errors[0].song == "song"


def test_shares_add_up_to_what_the_pooled_score_misses():
    """Also where a comparison leaves reference time out (majmin scores no sus4, no comparison scores X):
    the shares are of the time it scores."""
    pairs = {
        "a": (REFERENCE, ESTIMATE),
        "b": ([Seg(0, 3, "G:7"), Seg(3, 5, "E:min")], [Seg(0, 3, "G:maj"), Seg(3, 5, "C:maj7")]),
        "c": (
            [Seg(0, 2, "D:sus4"), Seg(2, 3, "X"), Seg(3, 6, "D:maj")],
            [Seg(0, 4, "D:maj"), Seg(4, 6, "B:min")],
        ),
    }
    for metric in ("root", "majmin", "majmin_inv", "sevenths"):
        errors = costliest_errors(pairs, metric, top=0)
        assert sum(e.share for e in errors) == pytest.approx(1 - score_songs(pairs).pooled[metric])


def test_given_keeps_only_time_the_other_comparison_scores_right():
    pairs = {"song": (REFERENCE, ESTIMATE)}
    bass_only = costliest_errors(pairs, "majmin_inv", given="majmin")
    assert [(e.reference, e.estimate, e.seconds) for e in bass_only] == [("A:min/b3", "A:min", 2.0)]
    assert len(costliest_errors(pairs, "majmin_inv")) == 3


def test_top_limits_the_list_and_format_names_each_error():
    errors = costliest_errors({"song": (REFERENCE, ESTIMATE)}, "majmin", top=1)
    assert len(errors) == 1
    line = format_errors(errors)
    assert "F:maj at 4.00 s" in line and "read as D:min" in line and "1.50 s" in line and "21.43%" in line


def test_errors_of_equal_time_are_listed_by_song_then_start_and_formatted_one_a_line():
    """The benchmark's list reads the same whatever order the songs come in."""
    pairs = {
        "b": ([Seg(0, 1, "C:maj"), Seg(1, 2, "G:maj")], [Seg(0, 1, "C:min"), Seg(1, 2, "G:min")]),
        "a": ([Seg(0, 1, "D:maj"), Seg(1, 2, "E:maj")], [Seg(0, 1, "D:min"), Seg(1, 2, "E:min")]),
    }
    errors = costliest_errors(pairs, "majmin")
    assert [(e.song, e.start) for e in errors] == [("a", 0.0), ("a", 1.0), ("b", 0.0), ("b", 1.0)]
    lines = format_errors(errors[:2]).splitlines()
    assert len(lines) == 2
    assert "a  D:maj at 0.00 s  read as D:min" in lines[0] and "a  E:maj at 1.00 s  read as E:min" in lines[1]


def test_given_leaves_out_time_the_other_comparison_does_not_score():
    """majmin scores no sus4 chord, so none of a sus4's time is "majmin right" (here: root wrong)."""
    pairs = {"song": ([Seg(0, 2, "D:sus4"), Seg(2, 4, "C:maj")], [Seg(0, 2, "E:maj"), Seg(2, 4, "C:min")])}
    assert [e.reference for e in costliest_errors(pairs, "root", top=0)] == ["D:sus4"]
    assert costliest_errors(pairs, "root", given="majmin", top=0) == []


def test_ten_errors_are_listed_by_default():
    roots = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
    reference = [Seg(i, i + 1, f"{root}:maj") for i, root in enumerate(roots)]
    estimate = [Seg(i, i + 1, f"{root}:min") for i, root in enumerate(roots)]
    assert len(costliest_errors({"song": (reference, estimate)}, "majmin")) == 10


def test_an_unknown_comparison_is_named():
    with pytest.raises(ValueError, match="'majmin_bass'"):
        costliest_errors({"song": (REFERENCE, ESTIMATE)}, "majmin_bass")
    with pytest.raises(ValueError, match="'thirdz'"):
        costliest_errors({"song": (REFERENCE, ESTIMATE)}, "majmin", given="thirdz")


def test_overlapping_segments_are_refused_naming_the_song():
    overlapping = [Seg(0, 3, "C:maj"), Seg(2, 7, "A:min")]
    with pytest.raises(ValueError, match=r"song 'b': the estimate, segment 2 .*overlaps segment 1"):
        costliest_errors({"a": (REFERENCE, ESTIMATE), "b": (REFERENCE, overlapping)}, "majmin")


def test_plain_tuples_give_the_errors_their_segments_give():
    """score_songs takes (start, end, label) tuples; costliest_errors read the reference chords' starts
    from them as given and failed with "'tuple' object has no attribute 'start'"."""
    as_tuples = {"song": tuple([(s.start, s.end, s.label) for s in seg] for seg in (REFERENCE, ESTIMATE))}
    assert costliest_errors(as_tuples, "majmin", top=0) == costliest_errors(
        {"song": (REFERENCE, ESTIMATE)}, "majmin", top=0
    )
    with pytest.raises(TypeError, match=r"^song 'song': the reference, segment 1: expected a ChordSegment"):
        costliest_errors({"song": ([{"start": 0, "end": 2, "label": "C"}], ESTIMATE)}, "majmin")
