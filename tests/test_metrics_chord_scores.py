"""Song-level chord scores: equal to mir_eval.chord.evaluate per song; pooled and median summaries."""

from audiotrain.chords.lab import ChordSegment
from audiotrain.metrics.chord_scores import CHORD_METRICS, score_song, score_songs

import mir_eval
import numpy as np
import pytest

REFERENCE = [
    ChordSegment(0.0, 1.0, "N"),
    ChordSegment(1.0, 3.0, "C:maj"),
    ChordSegment(3.0, 4.0, "A:min7"),
    ChordSegment(4.0, 6.5, "F:maj/3"),
    ChordSegment(6.5, 8.0, "G:7"),
    ChordSegment(8.0, 9.0, "D:sus4"),
]
ESTIMATE = [
    ChordSegment(0.0, 1.2, "N"),
    ChordSegment(1.2, 3.0, "C:maj"),
    ChordSegment(3.0, 4.0, "A:min"),
    ChordSegment(4.0, 6.5, "F:maj"),
    ChordSegment(6.5, 7.5, "G:7"),
    ChordSegment(7.5, 9.5, "D:maj"),
]


def _arrays(segments):
    return np.array([[s.start, s.end] for s in segments]), [s.label for s in segments]


def test_song_scores_equal_mir_eval():
    ours = score_song(REFERENCE, ESTIMATE)
    theirs = mir_eval.chord.evaluate(*_arrays(REFERENCE), *_arrays(ESTIMATE))
    assert set(ours) == set(CHORD_METRICS)
    for metric in CHORD_METRICS:
        assert ours[metric] == pytest.approx(theirs[metric]), metric
    assert 0.5 < ours["root"] < 1.0 and ours["majmin"] < 1.0  # partly right: a real check
    assert score_song(REFERENCE, REFERENCE) == dict.fromkeys(CHORD_METRICS, 1.0)


def test_pooled_is_duration_weighted_and_median_is_per_song():
    long_song = [ChordSegment(0, 30.0, "C:maj")]
    short_song = [ChordSegment(0, 10.0, "G:maj")]
    scores = score_songs(
        {
            "long": (long_song, [ChordSegment(0, 30.0, "C:maj")]),  # all right, 30 s
            "short": (short_song, [ChordSegment(0, 10.0, "E:min")]),  # all wrong, 10 s
            "third": (REFERENCE, ESTIMATE),
        }
    )
    third = mir_eval.chord.evaluate(*_arrays(REFERENCE), *_arrays(ESTIMATE))
    assert scores.per_song["long"]["root"] == 1.0 and scores.per_song["short"]["root"] == 0.0
    # pooled root: (30 + 0 + third * 9 s) / (30 + 10 + 9)
    assert scores.pooled["root"] == pytest.approx((30 + third["root"] * 9.0) / 49.0)
    assert scores.median["root"] == pytest.approx(np.median([1.0, 0.0, third["root"]]))
    table = scores.table()
    assert "| majmin |" in table and table.count("\n") == len(CHORD_METRICS) + 1
    assert scores.to_dict()["pooled"]["root"] == scores.pooled["root"]


def test_songs_without_covered_chords_are_left_out_of_the_median():
    # a song of sus chords has nothing for majmin to score
    sus = [ChordSegment(0, 5.0, "C:sus4")]
    scores = score_songs(
        {"sus": (sus, sus), "maj": ([ChordSegment(0, 5, "C:maj")], [ChordSegment(0, 5, "C:min")])}
    )
    assert np.isnan(scores.per_song["sus"]["majmin"])
    assert scores.median["majmin"] == 0.0 and scores.pooled["majmin"] == 0.0
    assert scores.to_dict()["per_song"]["sus"]["majmin"] is None


def test_empty_estimate_counts_as_no_chord():
    assert score_song([ChordSegment(0, 2, "N")], [])["root"] == 1.0
    with pytest.raises(ValueError, match="at least one song"):
        score_songs({})
    with pytest.raises(ValueError, match="reference annotation is empty"):
        score_song([], [])


def test_trim_reference_cuts_a_small_overhang_and_keeps_a_large_one():
    from audiotrain.metrics.chord_scores import MAX_REFERENCE_OVERHANG_S, trim_reference

    trimmed, overhang = trim_reference(REFERENCE, 8.5)  # the last chord starts at 8.0, ends at 9.0
    assert overhang == pytest.approx(0.5) and trimmed == [*REFERENCE[:-1], ChordSegment(8.0, 8.5, "D:sus4")]
    trimmed, overhang = trim_reference(REFERENCE, 7.5)  # a whole segment past the end goes
    assert trimmed[-1] == ChordSegment(6.5, 7.5, "G:7") and len(trimmed) == len(REFERENCE) - 1
    assert trim_reference(REFERENCE, 9.5) == (REFERENCE, 0.0)  # ends within the audio
    far = 9.0 - MAX_REFERENCE_OVERHANG_S - 0.5
    assert trim_reference(REFERENCE, far) == (REFERENCE, pytest.approx(MAX_REFERENCE_OVERHANG_S + 0.5))
    # Trimmed, the overhang no longer counts as wrong: an estimate covering the audio scores 1.
    scores = score_song(
        trim_reference(REFERENCE, 8.5)[0], [*REFERENCE[:-1], ChordSegment(8.0, 8.5, "D:sus4")]
    )
    assert scores["root"] == 1.0
