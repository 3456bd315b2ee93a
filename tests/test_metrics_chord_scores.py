"""Song-level chord scores: equal to mir_eval.chord.evaluate per song; pooled and median summaries."""

from audiotrain.chords.harte import HarteError
from audiotrain.chords.lab import ChordSegment
from audiotrain.metrics.chord_scores import CHORD_METRICS, difference_interval, score_song, score_songs

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
    one_song = score_song(sus, sus)
    assert np.isnan(one_song["majmin"]) and one_song["root"] == 1.0
    assert scores.median["majmin"] == 0.0 and scores.pooled["majmin"] == 0.0
    assert scores.to_dict()["per_song"]["sus"]["majmin"] is None


def test_a_reference_starting_after_the_estimate_is_scored_over_its_own_span_as_mir_eval_does():
    """A count-in left unannotated: the estimate's time before the reference starts is not scored."""
    reference = [ChordSegment(0.5, 4.0, "C:maj")]
    estimate = [ChordSegment(0.0, 2.0, "C:maj"), ChordSegment(2.0, 4.0, "A:min")]
    expected = mir_eval.chord.evaluate(*_arrays(reference), *_arrays(estimate))
    scores = score_song(reference, estimate)
    assert scores["majmin"] == pytest.approx(1.5 / 3.5)
    for name in CHORD_METRICS:
        assert scores[name] == pytest.approx(expected[name]), name


def test_an_estimate_starting_after_the_reference_is_padded_with_no_chord_as_mir_eval_does():
    """An output that starts at the first detected chord, over a reference opening with N: the time before
    it is N, right there on every comparison (padded with X it was wrong on all but root and mirex)."""
    reference = [ChordSegment(0.0, 1.0, "N"), ChordSegment(1.0, 4.0, "C:maj")]
    estimate = [ChordSegment(1.0, 4.0, "C:maj")]
    assert score_song(reference, estimate) == dict.fromkeys(CHORD_METRICS, 1.0)
    expected = mir_eval.chord.evaluate(*_arrays(reference), *_arrays(estimate))
    assert all(expected[name] == 1.0 for name in CHORD_METRICS)


def test_empty_estimate_counts_as_no_chord():
    """On every comparison: right over a no-chord reference, wrong over a chord."""
    assert score_song([ChordSegment(0, 2, "N")], []) == dict.fromkeys(CHORD_METRICS, 1.0)
    assert score_song([ChordSegment(0, 2, "C:maj")], []) == dict.fromkeys(CHORD_METRICS, 0.0)
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
    # The bound itself is cut, as the folder scan keeps a song that overhangs by exactly the bound.
    trimmed, overhang = trim_reference(REFERENCE, 9.0 - MAX_REFERENCE_OVERHANG_S)
    assert overhang == MAX_REFERENCE_OVERHANG_S and trimmed[-1].end == 9.0 - MAX_REFERENCE_OVERHANG_S
    # Trimmed, the overhang no longer counts as wrong: an estimate covering the audio scores 1.
    scores = score_song(
        trim_reference(REFERENCE, 8.5)[0], [*REFERENCE[:-1], ChordSegment(8.0, 8.5, "D:sus4")]
    )
    assert scores["root"] == 1.0


def _song_pairs(right_seconds):
    """One 10 s C:maj song per entry, its first `right` seconds read right and the rest as E:min."""
    pairs = {}
    for k, right in enumerate(right_seconds):
        estimate = [ChordSegment(0, right, "C:maj")] if right else []
        if right < 10:
            estimate.append(ChordSegment(right, 10.0, "E:min"))
        pairs[f"song_{k}"] = ([ChordSegment(0, 10.0, "C:maj")], estimate)
    return pairs


def _songs(right_seconds):
    return score_songs(_song_pairs(right_seconds))


def test_interval_over_songs_brackets_the_pooled_score_and_narrows_with_more_songs():
    few = _songs([10, 9, 6, 10, 3, 8])
    low, high = few.interval("majmin")
    assert low < few.pooled["majmin"] < high
    # Every resample pools some of these songs: the interval lies within the worst and best song.
    assert 0.3 <= low and high <= 1.0
    assert few.interval("majmin") == (low, high)  # seeded: reports do not change from run to run
    assert few.interval("majmin", seed=1) != (low, high)
    many = _songs([10, 9, 6, 10, 3, 8] * 8)  # the same spread over eight times the songs
    many_low, many_high = many.interval("majmin")
    assert many.pooled["majmin"] == pytest.approx(few.pooled["majmin"])
    assert many_high - many_low < 0.6 * (high - low)
    wider = few.interval("majmin", confidence=0.99)
    assert wider[0] <= low and high <= wider[1]


def test_interval_leaves_the_same_share_of_resampled_pools_below_it_as_above_it():
    """The `confidence` interval is the central part of the pooled scores of songs drawn again with
    replacement: (1 - confidence) / 2 of those pools below it and as many above (checked against draws of
    our own, so not against the interval's own random numbers)."""
    lengths = np.linspace(6.0, 20.0, 12)
    right = lengths * np.array([0.98, 0.9, 0.6, 0.99, 0.3, 0.8, 0.1, 0.7, 0.5, 0.95, 0.2, 0.85])
    pairs = {
        f"song_{k}": (
            [ChordSegment(0, length, "C:maj")],
            [ChordSegment(0, r, "C:maj"), ChordSegment(r, length, "E:min")],
        )
        for k, (length, r) in enumerate(zip(lengths, right))
    }
    scores = score_songs(pairs)
    draws = np.random.default_rng(12345).integers(len(lengths), size=(20000, len(lengths)))
    pools = right[draws].sum(1) / lengths[draws].sum(1)
    for confidence in (0.5, 0.9, 0.95):
        low, high = scores.interval("majmin", confidence, resamples=20000)
        tail = (1 - confidence) / 2
        assert np.mean(pools < low) == pytest.approx(tail, abs=0.01), confidence
        assert np.mean(pools > high) == pytest.approx(tail, abs=0.01), confidence


def test_songs_a_comparison_does_not_score_leave_its_intervals_unchanged():
    """A song of sus chords has no majmin time: drawn into a resample it would add nothing but take the
    place of a song that counts, and widen the interval (or make a draw of it alone 0 / 0)."""
    sus = [ChordSegment(0, 10.0, "C:sus4")]
    few, better = [9.7, 8.9, 6.1, 9.9, 3.3, 7.6], [9.8, 9.6, 7.2, 9.9, 4.1, 8.0]
    few_and_sus = score_songs({"sus": (sus, sus), **_song_pairs(few)})
    better_and_sus = score_songs({"sus": (sus, sus), **_song_pairs(better)})
    for confidence in (0.5, 0.95):
        assert few_and_sus.interval("majmin", confidence) == _songs(few).interval("majmin", confidence)
        assert difference_interval(better_and_sus, few_and_sus, "majmin", confidence) == difference_interval(
            _songs(better), _songs(few), "majmin", confidence
        )


def test_interval_is_duration_weighted_and_named_in_the_table_and_json():
    # A long right song and a short wrong one: resamples pool by time, so the interval sits high.
    scores = score_songs(
        {
            "long": ([ChordSegment(0, 90.0, "C:maj")], [ChordSegment(0, 90.0, "C:maj")]),
            "short": ([ChordSegment(0, 10.0, "G:maj")], [ChordSegment(0, 10.0, "E:min")]),
        }
    )
    low, high = scores.interval("root")
    assert low == 0.0 and high == 1.0  # a resample can draw either song alone
    assert scores.pooled["root"] == pytest.approx(0.9)
    table = scores.table(["root"])
    assert "| metric | pooled | 95% interval over songs | median |" in table
    assert "| root | 90.00 | 0.0-100.0 | 50.00 |" in table
    stored = scores.to_dict()
    assert stored["pooled_interval"]["root"] == [low, high] and stored["interval_confidence"] == 0.95


def test_interval_needs_two_scored_songs_and_a_known_comparison():
    one = score_songs({"only": (REFERENCE, ESTIMATE)})
    assert all(np.isnan(one.interval("root")))
    assert one.to_dict()["pooled_interval"]["root"] is None
    assert "| root | " in one.table() and " | - | " in one.table()
    # A song of sus chords has no majmin time: it does not count as a second song for majmin.
    sus = [ChordSegment(0, 5.0, "C:sus4")]
    mixed = score_songs({"sus": (sus, sus), "third": (REFERENCE, ESTIMATE)})
    assert all(np.isnan(mixed.interval("majmin"))) and not any(np.isnan(mixed.interval("root")))
    with pytest.raises(ValueError, match="unknown chord comparison 'majmni'"):
        mixed.interval("majmni")
    with pytest.raises(ValueError, match="confidence must be between 0 and 1"):
        mixed.interval("root", confidence=95)
    with pytest.raises(ValueError, match="confidence must be between 0 and 1, got 1.0"):
        mixed.interval("root", confidence=1.0)  # would be the range of the draws, not an interval
    # resamples=0 failed in np.quantile ("index -1 is out of bounds for axis 0 with size 0"), naming nothing
    for resamples in (0, -5, 2.5):
        with pytest.raises(ValueError, match=rf"resamples must be a whole number >= 1, got {resamples}"):
            mixed.interval("root", resamples=resamples)
        with pytest.raises(ValueError, match=rf"resamples must be a whole number >= 1, got {resamples}"):
            difference_interval(mixed, mixed, "root", resamples=resamples)


def test_difference_interval_pairs_the_songs():
    # Two transcriptions that share most mistakes: each score's own interval is wide, their difference's
    # narrow, since every drawn set of songs scores both.
    baseline = _songs([10, 9, 2, 10, 3, 8, 5, 10])
    better = _songs([10, 10, 3, 10, 4, 9, 6, 10])  # one more second right in five songs of eight
    difference, low, high = difference_interval(better, baseline, "majmin")
    assert (
        difference
        == pytest.approx(better.pooled["majmin"] - baseline.pooled["majmin"])
        == pytest.approx(0.0625)
    )
    assert 0.0 < low <= difference <= high
    own_low, own_high = better.interval("majmin")
    assert high - low < 0.5 * (own_high - own_low)
    assert difference_interval(baseline, baseline, "majmin") == (0.0, 0.0, 0.0)
    reversed_difference, reversed_low, reversed_high = difference_interval(baseline, better, "majmin")
    assert (reversed_difference, reversed_low, reversed_high) == pytest.approx((-difference, -high, -low))


def test_difference_interval_refuses_other_songs():
    with pytest.raises(ValueError, match="same songs in both scores; only in one: \\['song_2'\\]"):
        difference_interval(_songs([10, 9, 2]), _songs([10, 9]), "majmin")
    with pytest.raises(ValueError, match="unknown chord comparison"):
        difference_interval(_songs([10, 9]), _songs([10, 9]), "chords")


def test_a_comparison_that_covers_no_time_shows_a_dash_and_says_why():
    """Every reference chord sus4: majmin covers nothing, and the table showed a bare 'nan' with no word."""
    sus = [ChordSegment(0, 5.0, "C:sus4")]
    scores = score_songs({"sus": (sus, sus)})
    table = scores.table(["root", "majmin"])
    assert "| majmin | - | - | - |" in table and "nan" not in table
    assert "'-': no reference time of a kind that majmin scores" in table
    assert "no reference time" not in scores.table(["root"])


def test_overlapping_or_unsorted_segments_are_refused_naming_the_song_and_segments():
    """mir_eval.chord.evaluate refuses them; scored as they were, an overlap got the label the cut kept."""
    reference = [ChordSegment(0.0, 2.0, "C:maj"), ChordSegment(2.0, 4.0, "G:maj")]
    overlapping = [ChordSegment(0.0, 3.0, "C:maj"), ChordSegment(1.0, 4.0, "G:maj")]
    with pytest.raises(
        ValueError,
        match=r"song 'b': the estimate, segment 2 \(1.0-4.0 'G:maj'\): overlaps segment 1 \(0.0-3.0",
    ):
        score_songs({"a": (reference, reference), "b": (reference, overlapping)})
    with pytest.raises(ValueError, match=r"^the estimate, segment 2 .*overlaps segment 1"):
        score_song(reference, overlapping)
    with pytest.raises(
        ValueError, match=r"song 'a': the reference, segment 2 \(0.0-2.0 'C:maj'\): starts before"
    ):
        score_songs({"a": (reference[::-1], reference)})
    with pytest.raises(
        ValueError, match=r"the estimate, segment 1 \(2.0-1.0 'C:maj'\): its end comes before"
    ):
        score_song(reference, [ChordSegment(2.0, 1.0, "C:maj")])
    gap = [ChordSegment(0.0, 1.0, "C:maj"), ChordSegment(3.0, 4.0, "G:maj")]  # allow_gaps leaves such gaps
    assert score_song(gap, gap)["root"] == 1.0
    # However small: a 1 ms overlap is refused too.
    with pytest.raises(ValueError, match=r"^the estimate, segment 2 .*overlaps segment 1"):
        score_song(reference, [ChordSegment(0.0, 1.001, "C:maj"), ChordSegment(1.0, 4.0, "G:maj")])
    # A zero-length segment covers no time: allowed, where it starts and where the next one does.
    zero_length = [reference[0], ChordSegment(2.0, 2.0, "A:min"), reference[1]]
    estimate = [ChordSegment(0.0, 3.0, "C:maj"), ChordSegment(3.0, 4.0, "G:maj")]
    assert score_song(zero_length, estimate) == score_song(reference, estimate)
    assert score_song(reference, zero_length) == score_song(reference, reference)


@pytest.mark.parametrize(
    "bad, shown",
    [
        (ChordSegment(2.0, float("nan"), "G:maj"), "2.0-nan"),
        (ChordSegment(2.0, float("inf"), "G:maj"), "2.0-inf"),
        (ChordSegment(-1.0, 4.0, "G:maj"), "-1.0-4.0"),
    ],
    ids=["nan", "inf", "negative"],
)
def test_times_that_are_not_seconds_from_zero_are_refused_naming_the_segment(bad, shown):
    """A NaN, an infinity or a negative time (a broken lab file, an offset applied twice) would reach
    mir_eval, which scores or refuses it without naming the song or the segment."""
    reference = [ChordSegment(0.0, 2.0, "C:maj"), ChordSegment(2.0, 4.0, "G:maj")]
    with pytest.raises(
        ValueError, match=rf"^the estimate, segment 2 \({shown} 'G:maj'\): times must be finite seconds >= 0"
    ):
        score_song(reference, [reference[0], bad])
    with pytest.raises(ValueError, match=r"^the reference, segment 1 .*times must be finite seconds >= 0"):
        score_song([ChordSegment(-0.5, 2.0, "C:maj")], reference)


def test_the_skipped_songs_line_counts_one_song_in_the_singular():
    scores = score_songs({"kept": (REFERENCE, ESTIMATE)})
    scores.skipped["lost"] = "no annotation"
    assert "1 song scored; 1 song skipped (the scores above cover only the 1 of 2 songs scored):" in (
        scores.table()
    )


def test_the_skipped_songs_are_listed_with_control_characters_in_their_names_escaped():
    """`evaluate` printed a skipped song's name (its file's, from a folder of someone else's) with its ESC and
    BEL as they are, recolouring the terminal and ringing it: they are shown escaped, as repr writes them."""
    scores = score_songs({"kept": (REFERENCE, ESTIMATE)})
    scores.skipped["s0\x1b[31mRED\x07"] = "s0\x1b[31mRED\x07.wav: no annotation"
    table = scores.table()
    assert "\x1b" not in table and "\x07" not in table
    assert "- s0\\x1b[31mRED\\x07: s0\\x1b[31mRED\\x07.wav: no annotation" in table


def test_a_skipped_song_named_with_a_line_break_stays_one_entry_of_the_list():
    """A file named `new<LF>line.wav` (a name may hold any character but "/") broke the list of songs skipped,
    on screen and in scores.md, into lines that did not start with "- ": one song read as three entries."""
    scores = score_songs({"kept": (REFERENCE, ESTIMATE)})
    scores.skipped["new\nline"] = "new\nline.wav: no annotation"
    scores.skipped["next"] = "next.wav: no annotation"
    listed = scores.table().split("songs scored):\n", 1)[1].splitlines()
    assert listed == ["- new", "  line: new", "  line.wav: no annotation", "- next: next.wav: no annotation"]


def test_plain_tuples_are_scored_and_a_bad_label_or_item_is_named():
    """(start, end, label) tuples (as mir_eval.io.load_labeled_intervals gives them) failed with
    "'tuple' object has no attribute 'start'"; an invalid label with mir_eval's InvalidChordException,
    which names neither the annotation nor the segment."""
    as_tuples = [(s.start, s.end, s.label) for s in ESTIMATE]
    assert score_song(REFERENCE, as_tuples) == score_song(REFERENCE, ESTIMATE)
    with pytest.raises(
        HarteError, match=r"^the estimate, segment 1 \(0-4 'H:maj'\): invalid chord label 'H:maj'"
    ):
        score_song(REFERENCE, [ChordSegment(0, 4, "H:maj")])
    with pytest.raises(
        HarteError, match=r"song 'a': the reference, segment 2 .*did you mean 'A:min'\?"
    ) as info:
        score_songs({"a": ([(0, 1, "C"), (1, 2, "Am")], ESTIMATE)})
    assert info.value.label == "Am" and info.value.suggestion == "A:min"  # for code that fixes the file
    with pytest.raises(
        HarteError, match=r"^the estimate, segment 1 \(0-4 5\): a label must be a str, got int"
    ):
        score_song(REFERENCE, [(0, 4, 5)])
    with pytest.raises(
        TypeError, match=r"^the reference, segment 1: expected a ChordSegment or a \(start, end"
    ):
        score_song([{"start": 0, "end": 1, "label": "C"}], ESTIMATE)
    with pytest.raises(TypeError, match=r"^the estimate, segment 1: expected a ChordSegment .*got str"):
        score_song(REFERENCE, ["C:7"])  # three characters, not (start, end, label)
    with pytest.raises(TypeError, match=r"^the estimate: expected a list of ChordSegment .*got str"):
        score_song(REFERENCE, "song.lab")


@pytest.mark.parametrize(
    "written, spelled",
    [("C:maj/E", "C:maj/3"), (" C:maj ", "C:maj"), ("C:(3, 5)", "C:(3,5)"), ("C:maj/ E", "C:maj/3")],
)
def test_a_label_parse_harte_reads_is_scored_as_its_canonical_spelling(written, spelled):
    """mir_eval's grammar refuses these spellings (an InvalidChordException naming neither the song nor the
    segment): they are scored as the chord they name."""
    with pytest.raises(mir_eval.chord.InvalidChordException):
        mir_eval.chord.encode(written)
    reference = [ChordSegment(0.0, 2.0, "C:maj/3"), ChordSegment(2.0, 4.0, "A:min")]
    as_written = score_song(reference, [ChordSegment(0.0, 4.0, written)])
    assert as_written == score_song(reference, [ChordSegment(0.0, 4.0, spelled)])
    assert score_song([ChordSegment(0.0, 4.0, written)], reference) == score_song(
        [ChordSegment(0.0, 4.0, spelled)], reference
    )
