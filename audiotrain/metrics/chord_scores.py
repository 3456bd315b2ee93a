"""Song-level chord recognition scores with ``mir_eval.chord`` (MIREX-style), pooled and per-song median.

For each song the estimate is trimmed / padded with ``N`` to the reference's span, both are cut at every
boundary of either, and each ``mir_eval.chord`` comparison scores each piece; a song's score is the
duration-weighted mean over the pieces the comparison covers (e.g. ``majmin`` skips reference chords that
are neither major nor minor nor N) -- exactly `mir_eval.chord.evaluate`.

Over a set of songs two summaries are reported, as in MIREX:

- ``pooled``: weighted by duration over all songs (each second counts once: long songs weigh more);
- ``median``: the median of the song scores.

With few songs the pooled score is a rough figure: one song voiced unlike the others moves it by points.
`ChordScores.interval` gives its bootstrap interval over songs (the range in which the pooled score of
another set of songs like these would fall), and `ChordScores.table` prints it beside the scores.

A song in which a comparison covers nothing (no reference chord of that kind) has no score for it (NaN)
and is left out of that comparison's median, where ``mir_eval.chord.evaluate`` would report 0.

Reference annotations commonly end a little after the audio (rounding, a fade written out to the end).
Scored as they are, that overhang counts as wrong (``mir_eval`` pads the estimate with ``N``), so
`trim_reference` cuts the reference at the audio's end when it overhangs by at most
`MAX_REFERENCE_OVERHANG_S`; a larger overhang is kept, and reported, since it points at another version
of the recording.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from audiotrain._text import plural, without_control_characters
from audiotrain._warning_filters import ignoring_warnings
from audiotrain.chords.harte import HarteError, format_harte, parse_harte
from audiotrain.chords.lab import ChordSegment

import numpy as np

#: The comparisons reported, in table order.
CHORD_METRICS = (
    "root", "majmin", "majmin_inv", "mirex", "thirds", "thirds_inv", "triads", "triads_inv",
    "sevenths", "sevenths_inv", "tetrads", "tetrads_inv",
)  # fmt: skip


def mir_eval():
    """The `mir_eval` package, imported on first use: it pulls in scipy.stats (about 0.6 s), which commands
    that score nothing (`--help`, `predict`) need not pay."""
    import mir_eval

    return mir_eval


#: Largest overhang (seconds) of a reference annotation past the end of its audio that `trim_reference`
#: cuts off before scoring. The same bound as the folder scan's
#: `audiotrain.datasets.chord_songs.MAX_ANNOTATION_OVERHANG_S`, past which a song is not used.
MAX_REFERENCE_OVERHANG_S = 2.0
#: Confidence of the interval over songs that `ChordScores.table` and `ChordScores.to_dict` report.
INTERVAL_CONFIDENCE = 0.95


def trim_reference(
    reference: Sequence[ChordSegment],
    duration: float,
    max_overhang: float = MAX_REFERENCE_OVERHANG_S,
    min_overhang: float = 0.0,
) -> tuple[list[ChordSegment], float]:
    """Cut `reference` at ``duration`` (the audio's length) if it overhangs by more than `min_overhang` s
    and at most `max_overhang` s.

    Returns
    -------
    (segments, overhang) : the reference, trimmed when the overhang is within the bounds (else
        unchanged), and the overhang in seconds (0 when the reference ends within the audio).
    """
    reference = list(reference)
    overhang = max(0.0, reference[-1].end - duration) if reference else 0.0
    if overhang <= min_overhang or overhang > max_overhang:
        return reference, overhang
    trimmed = [ChordSegment(s.start, min(s.end, duration), s.label) for s in reference if s.start < duration]
    return trimmed or reference, overhang


def _as_arrays(segments: Sequence[ChordSegment]) -> tuple[np.ndarray, list[str]]:
    intervals = np.array([[s.start, s.end] for s in segments], dtype=np.float64).reshape(-1, 2)
    return intervals, [s.label for s in segments]


def as_segments(segments: Sequence[ChordSegment | tuple[float, float, str]], what: str) -> list[ChordSegment]:
    """`segments` as `ChordSegment`s: ``(start, end, label)`` tuples (what users of
    ``mir_eval.io.load_labeled_intervals`` hold, and how a ChordSegment prints) are converted; anything else
    is a TypeError naming `what` (``"the estimate"``) and the item (from 1)."""
    if isinstance(segments, (str, bytes)) or not isinstance(segments, Sequence):
        raise TypeError(
            f"{what}: expected a list of ChordSegment or (start, end, label) tuples, "
            f"got {type(segments).__name__}"
        )
    converted = []
    for i, segment in enumerate(segments):
        if isinstance(segment, ChordSegment):
            converted.append(segment)
        elif isinstance(segment, Sequence) and not isinstance(segment, str) and len(segment) == 3:
            converted.append(ChordSegment(*segment))
        else:
            raise TypeError(
                f"{what}, segment {i + 1}: expected a ChordSegment or a (start, end, label) tuple, "
                f"got {type(segment).__name__} {segment!r:.80}"
            )
    return converted


def check_segments(segments: Sequence[ChordSegment], what: str) -> None:
    """Raise a ValueError naming `what` (``"song 'x': the estimate"``) and the first segment (from 1) whose
    times are not a number of seconds >= 0, whose end comes before its start, that starts before the
    segment above it (unsorted), or that starts before the one above it ends (an overlap).

    ``mir_eval.chord.evaluate`` refuses overlaps and unsorted segments ("Time intervals do not align"),
    naming neither the song nor the segment; cut without the check, an overlap would be scored by whichever
    label the cut keeps. Gaps are allowed (a reference read with ``allow_gaps`` has them), and so are
    zero-length segments, which cover no time. A label that is not Harte syntax is a `HarteError` naming
    the segment (mir_eval would raise its InvalidChordException mid-comparison, naming the label alone).
    """

    def shown(i: int) -> str:
        segment = segments[i]
        return f"segment {i + 1} ({segment.start}-{segment.end} {segment.label!r})"

    intervals, _ = _as_arrays(segments)
    starts, ends = intervals[:, 0], intervals[:, 1]
    problems = (
        (
            ~np.isfinite(intervals).all(axis=1) | (intervals < 0).any(axis=1),
            "times must be finite seconds >= 0",
        ),
        (ends < starts, "its end comes before its start"),
    )
    for bad, why in problems:
        if bad.any():
            raise ValueError(f"{what}, {shown(int(np.argmax(bad)))}: {why}")
    unsorted = np.flatnonzero(starts[1:] < starts[:-1])
    if unsorted.size:
        i = int(unsorted[0]) + 1
        raise ValueError(f"{what}, {shown(i)}: starts before {shown(i - 1)}; sort the segments by start time")
    overlapping = np.flatnonzero(starts[1:] < ends[:-1])
    if overlapping.size:
        i = int(overlapping[0]) + 1
        raise ValueError(f"{what}, {shown(i)}: overlaps {shown(i - 1)}; segments must not overlap")
    # mir_eval raises InvalidChordException naming only the label, mid-comparison.
    for i, segment in enumerate(segments):
        if not isinstance(segment.label, str):
            raise HarteError(f"{what}, {shown(i)}: a label must be a str, got {type(segment.label).__name__}")
        try:
            parse_harte(segment.label)
        except HarteError as err:
            raise HarteError(f"{what}, {shown(i)}: {err}", err.label, spellings=err.spellings) from None


def _mir_eval_spelling(labels: list[str]) -> list[str]:
    spelled: dict[str, str] = {}
    for label in labels:
        if label not in spelled:
            spelled[label] = format_harte(parse_harte(label))
    return [spelled[label] for label in labels]


def merged_pieces(
    reference: Sequence[ChordSegment], estimate: Sequence[ChordSegment], song: str | None = None
) -> tuple[np.ndarray, list[str], list[str]]:
    """The pieces both annotations are cut into, as `mir_eval.chord.evaluate` scores them: intervals
    [pieces, 2] (seconds), reference labels, estimated labels. The estimate is trimmed / padded with ``N``
    to the reference's span. Segments that overlap or are out of order are an error (`check_segments`)
    naming `song` (if given), which annotation and the segments."""
    whose = f"song {song!r}: " if song is not None else ""
    reference = as_segments(reference, f"{whose}the reference")
    estimate = as_segments(estimate, f"{whose}the estimate")
    if not reference:
        raise ValueError(f"{whose}the reference annotation is empty")
    check_segments(reference, f"{whose}the reference")
    check_segments(estimate, f"{whose}the estimate")
    ref_intervals, ref_labels = _as_arrays(reference)
    est_intervals, est_labels = _as_arrays(estimate) if estimate else (np.array([[0.0, 1e-3]]), ["N"])
    # Scored in the spelling format_harte writes: a label parse_harte reads but mir_eval's grammar does not
    # (spaces around it or in a degree list, a note-name bass 'C:maj/E') means the same chord there.
    ref_labels, est_labels = _mir_eval_spelling(ref_labels), _mir_eval_spelling(est_labels)
    mir = mir_eval()
    est_intervals, est_labels = mir.util.adjust_intervals(
        est_intervals,
        est_labels,
        ref_intervals.min(),
        ref_intervals.max(),
        mir.chord.NO_CHORD,
        mir.chord.NO_CHORD,
    )
    intervals, ref_labels, est_labels = mir.util.merge_labeled_intervals(
        ref_intervals, ref_labels, est_intervals, est_labels
    )
    return intervals, ref_labels, est_labels


def song_comparisons(
    reference: Sequence[ChordSegment], estimate: Sequence[ChordSegment], song: str | None = None
) -> dict[str, tuple[float, float]]:
    """Per comparison: (correct seconds, evaluated seconds) of one song (`song` names it in errors).

    The score is their ratio; the pair is what pooling over songs needs.
    """
    intervals, ref_labels, est_labels = merged_pieces(reference, estimate, song)
    mir = mir_eval()
    durations = mir.util.intervals_to_durations(intervals)
    result = {}
    for name in CHORD_METRICS:
        comparison = np.asarray(getattr(mir.chord, name)(ref_labels, est_labels), dtype=np.float64)
        covered = comparison >= 0
        result[name] = (
            float((comparison[covered] * durations[covered]).sum()),
            float(durations[covered].sum()),
        )
    return result


def score_song(reference: Sequence[ChordSegment], estimate: Sequence[ChordSegment]) -> dict[str, float]:
    """Each comparison's score (0-1) for one song; NaN where the comparison covers nothing.

    `reference` and `estimate` are lists of `ChordSegment` or of ``(start, end, label)`` tuples. Segments
    that overlap or are out of order are an error naming them (`check_segments`), as
    ``mir_eval.chord.evaluate`` refuses them too, and so is a label that is not Harte syntax (`HarteError`).
    """
    return {
        name: correct / total if total > 0 else float("nan")
        for name, (correct, total) in song_comparisons(reference, estimate).items()
    }


@dataclass
class ChordScores:
    """Scores of a set of songs: ``per_song[name][metric]``, ``pooled[metric]``, ``median[metric]`` (0-1)."""

    per_song: dict[str, dict[str, float]] = field(default_factory=dict)
    pooled: dict[str, float] = field(default_factory=dict)
    median: dict[str, float] = field(default_factory=dict)
    #: Songs left out of the scores, with the reason (e.g. their audio does not decode).
    skipped: dict[str, str] = field(default_factory=dict)
    #: ``per_song_seconds[name][metric]``: the seconds a comparison scores in a song (its weight in
    #: ``pooled``).
    per_song_seconds: dict[str, dict[str, float]] = field(default_factory=dict)
    #: Songs whose reference overhangs their audio by more than `MAX_REFERENCE_OVERHANG_S`: scored
    #: untrimmed (the overhang counts as wrong); the overhang in seconds.
    overhanging: dict[str, float] = field(default_factory=dict)

    def interval(
        self, metric: str, confidence: float = INTERVAL_CONFIDENCE, resamples: int = 2000, seed: int = 0
    ) -> tuple[float, float]:
        """The percentile bootstrap interval of ``pooled[metric]`` over songs (0-1).

        The songs are drawn again with replacement `resamples` times and pooled each time, so the interval
        says how much the score owes to which songs were picked: a test set of 16 songs whose errors sit in
        a few chords of a few songs can move by points with another 16 like them. It does not cover what
        the songs have in common (a style the model was trained on). Seeded: the same scores give the same
        interval. `resamples` must be a whole number >= 1, `confidence` between 0 and 1. NaN, NaN where
        fewer than two songs have time that the comparison scores.
        """
        _check_interval_request(self, metric, confidence, resamples)
        correct, seconds = _song_seconds(self, list(self.per_song), metric)
        covered = seconds > 0  # songs without time for the comparison would only thin the draws
        correct, seconds = correct[covered], seconds[covered]
        if len(seconds) < 2:
            return float("nan"), float("nan")
        draws = _drawn_songs(len(seconds), resamples, seed)
        return _central(correct[draws].sum(1) / seconds[draws].sum(1), confidence)

    def to_dict(self) -> dict:
        """JSON-able (NaN as None)."""

        def clean(d):
            return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in d.items()}

        intervals = {metric: self.interval(metric) for metric in self.pooled}
        return {
            "pooled": clean(self.pooled),
            "pooled_interval": {
                metric: None if np.isnan(low) else [low, high] for metric, (low, high) in intervals.items()
            },
            "interval_confidence": INTERVAL_CONFIDENCE,
            "median": clean(self.median),
            "per_song": {name: clean(scores) for name, scores in self.per_song.items()},
            # (the weights of `pooled`: a reader pools per-song scores, of these songs or more, with them)
            "per_song_seconds": {name: dict(seconds) for name, seconds in self.per_song_seconds.items()},
            "songs_scored": len(self.per_song),
            "songs_skipped": len(self.skipped),
            "skipped": [{"song": name, "reason": why} for name, why in self.skipped.items()],
            "overhanging_references": dict(self.overhanging),
        }

    def table(self, metrics: Sequence[str] = CHORD_METRICS) -> str:
        """A Markdown table: one row per metric, pooled, its interval over songs (`interval`) and median
        columns, in percent; then the songs left out (`skipped`) and those with a long reference overhang
        (`overhanging`), if any."""
        percent = round(100 * INTERVAL_CONFIDENCE)
        lines = [f"| metric | pooled | {percent}% interval over songs | median |", "|---|---|---|---|"]
        for name in metrics:
            low, high = self.interval(name)
            spread = "-" if np.isnan(low) else f"{100 * low:.1f}-{100 * high:.1f}"
            pooled, median = percent_or_dash(self.pooled[name]), percent_or_dash(self.median[name])
            lines.append(f"| {name} | {pooled} | {spread} | {median} |")
        uncovered = [name for name in metrics if np.isnan(self.pooled[name])]
        if uncovered:
            lines += ["", uncovered_note(uncovered)]
        if self.skipped:
            lines.append("")
            scored, skipped = len(self.per_song), len(self.skipped)
            lines.append(
                f"{plural(scored, 'song')} scored; {plural(skipped, 'song')} skipped (the scores above cover "
                f"only the {scored} of {scored + skipped} songs scored):"
            )
            # A line break in an entry (a file named with one, a reason of several lines) continues it indented:
            # each entry still starts a line with "- ", in the terminal and in scores.md's Markdown list.
            lines += [f"- {name}: {why}".replace("\n", "\n  ") for name, why in self.skipped.items()]
        if self.overhanging:
            lines.append("")
            lines.append(
                f"{len(self.overhanging)} references run more than {MAX_REFERENCE_OVERHANG_S:g} s past the end "
                "of their audio (scored as they are; the overhang counts as wrong):"
            )
            lines += [f"- {name}: {seconds:.2f} s" for name, seconds in self.overhanging.items()]
        return without_control_characters("\n".join(lines))  # (the songs' names are their files')


def percent_or_dash(score: float) -> str:
    """A 0-1 score in percent with 2 decimals; ``-`` for NaN (the comparison covers no time)."""
    return "-" if np.isnan(score) else f"{100 * score:.2f}"


def uncovered_note(metrics: Sequence[str]) -> str:
    """The line under a score table that says why `metrics` show ``-`` rather than a score."""
    return (
        f"'-': no reference time of a kind that {', '.join(metrics)} score{'s' * (len(metrics) == 1)} "
        "(majmin, for one, scores only major, minor and N; X is scored by none)"
    )


def difference_interval(
    scores: ChordScores,
    baseline: ChordScores,
    metric: str,
    confidence: float = INTERVAL_CONFIDENCE,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``scores.pooled[metric] - baseline.pooled[metric]`` on the same songs, and its bootstrap interval.

    Both transcriptions are scored on each drawn set of songs, so the interval covers what the difference
    owes to which songs were picked; it is far narrower than either score's own interval when the two
    make the same mistakes. Returns (difference, low, high), 0-1 units; NaN, NaN for the interval where
    fewer than two songs have time the comparison scores.
    """
    songs = list(scores.per_song)
    if sorted(songs) != sorted(baseline.per_song):
        raise ValueError(
            "difference_interval needs the same songs in both scores; only in one: "
            f"{sorted(set(songs) ^ set(baseline.per_song))}"
        )
    _check_interval_request(scores, metric, confidence, resamples)
    difference = scores.pooled[metric] - baseline.pooled[metric]
    correct, seconds = _song_seconds(scores, songs, metric)
    base_correct, base_seconds = _song_seconds(baseline, songs, metric)
    # A comparison's time in a song follows the reference alone: the same in both where the songs match.
    covered = (seconds > 0) & (base_seconds > 0)
    if covered.sum() < 2:
        return difference, float("nan"), float("nan")
    correct, seconds, base_correct, base_seconds = (
        x[covered] for x in (correct, seconds, base_correct, base_seconds)
    )
    draws = _drawn_songs(len(seconds), resamples, seed)

    def pooled(right: np.ndarray, scored: np.ndarray) -> np.ndarray:
        return right[draws].sum(1) / scored[draws].sum(1)

    drawn = pooled(correct, seconds) - pooled(base_correct, base_seconds)
    return (difference, *_central(drawn, confidence))


def _check_interval_request(scores: ChordScores, metric: str, confidence: float, resamples: int) -> None:
    if metric not in scores.pooled:
        raise ValueError(f"unknown chord comparison {metric!r}; expected one of {sorted(scores.pooled)}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}")
    # 0 failed in np.quantile ("index -1 is out of bounds"), a negative count in numpy's draw, naming neither
    if isinstance(resamples, bool) or not isinstance(resamples, numbers.Integral) or resamples < 1:
        raise ValueError(f"resamples must be a whole number >= 1, got {resamples!r}")


def _song_seconds(scores: ChordScores, songs: list[str], metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Per song: the seconds `metric` scores right and the seconds it scores (0 and 0 where none)."""
    seconds = np.array([scores.per_song_seconds.get(name, {}).get(metric, 0.0) for name in songs])
    score = np.nan_to_num(np.array([scores.per_song[name][metric] for name in songs]))
    return score * seconds, seconds


def _drawn_songs(n_songs: int, resamples: int, seed: int) -> np.ndarray:
    """[resamples, n_songs] song indices drawn with replacement (seeded: a report gives the same interval)."""
    return np.random.default_rng(seed).integers(n_songs, size=(resamples, n_songs))


def _central(values: np.ndarray, confidence: float) -> tuple[float, float]:
    low, high = np.quantile(values, [(1.0 - confidence) / 2.0, (1.0 + confidence) / 2.0])
    return float(low), float(high)


def score_songs(pairs: Mapping[str, tuple[Sequence[ChordSegment], Sequence[ChordSegment]]]) -> ChordScores:
    """Score many songs: ``pairs[name] = (reference segments, estimated segments)``; segments that overlap
    or are out of order are an error naming the song and the segments (`check_segments`)."""
    if not pairs:
        raise ValueError("score_songs needs at least one song")
    correct = dict.fromkeys(CHORD_METRICS, 0.0)
    total = dict.fromkeys(CHORD_METRICS, 0.0)
    scores = ChordScores()
    for name, (reference, estimate) in pairs.items():
        comparisons = song_comparisons(reference, estimate, name)
        scores.per_song[name] = {}
        scores.per_song_seconds[name] = {metric: t for metric, (_, t) in comparisons.items()}
        for metric, (c, t) in comparisons.items():
            correct[metric] += c
            total[metric] += t
            scores.per_song[name][metric] = c / t if t > 0 else float("nan")
    # (all-NaN medians are reported as NaN; not catch_warnings: it resets the once-per-place registries)
    with ignoring_warnings(category=RuntimeWarning):
        for metric in CHORD_METRICS:
            scores.pooled[metric] = correct[metric] / total[metric] if total[metric] > 0 else float("nan")
            scores.median[metric] = float(np.nanmedian([s[metric] for s in scores.per_song.values()]))
    return scores
