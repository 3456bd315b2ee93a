"""Song-level chord recognition scores with ``mir_eval.chord`` (MIREX-style), pooled and per-song median.

For each song the estimate is trimmed / padded with ``N`` to the reference's span, both are cut at every
boundary of either, and each ``mir_eval.chord`` comparison scores each piece; a song's score is the
duration-weighted mean over the pieces the comparison covers (e.g. ``majmin`` skips reference chords that
are neither major nor minor nor N) -- exactly `mir_eval.chord.evaluate`.

Over a set of songs two summaries are reported, as in MIREX:

- ``pooled``: weighted by duration over all songs (each second counts once: long songs weigh more);
- ``median``: the median of the song scores.

A song in which a comparison covers nothing (no reference chord of that kind) has no score for it (NaN)
and is left out of that comparison's median, where ``mir_eval.chord.evaluate`` would report 0.

Reference annotations commonly end a little after the audio (rounding, a fade written out to the end).
Scored as they are, that overhang counts as wrong (``mir_eval`` pads the estimate with ``N``), so
`trim_reference` cuts the reference at the audio's end when it overhangs by at most
`MAX_REFERENCE_OVERHANG_S`; a larger overhang is kept, and reported, since it points at another version
of the recording.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from audiotrain.chords.lab import ChordSegment

import mir_eval
import numpy as np

#: The comparisons reported, in table order.
CHORD_METRICS = (
    "root", "majmin", "majmin_inv", "mirex", "thirds", "thirds_inv", "triads", "triads_inv",
    "sevenths", "sevenths_inv", "tetrads", "tetrads_inv",
)  # fmt: skip
_COMPARISONS = {name: getattr(mir_eval.chord, name) for name in CHORD_METRICS}

#: Largest overhang (seconds) of a reference annotation past the end of its audio that `trim_reference`
#: cuts off before scoring. The same bound as the folder scan's
#: `audiotrain.datasets.chord_songs.MAX_ANNOTATION_OVERHANG_S`, past which a song is not used.
MAX_REFERENCE_OVERHANG_S = 2.0


def trim_reference(
    reference: Sequence[ChordSegment], duration: float, max_overhang: float = MAX_REFERENCE_OVERHANG_S
) -> tuple[list[ChordSegment], float]:
    """Cut `reference` at ``duration`` (the audio's length) if it overhangs by at most `max_overhang` s.

    Returns
    -------
    (segments, overhang) : the reference, trimmed when the overhang is within `max_overhang` (else
        unchanged), and the overhang in seconds (0 when the reference ends within the audio).
    """
    reference = list(reference)
    overhang = max(0.0, reference[-1].end - duration) if reference else 0.0
    if overhang == 0.0 or overhang > max_overhang:
        return reference, overhang
    trimmed = [ChordSegment(s.start, min(s.end, duration), s.label) for s in reference if s.start < duration]
    return trimmed or reference, overhang


def _as_arrays(segments: Sequence[ChordSegment]) -> tuple[np.ndarray, list[str]]:
    intervals = np.array([[s.start, s.end] for s in segments], dtype=np.float64).reshape(-1, 2)
    return intervals, [s.label for s in segments]


def merged_pieces(
    reference: Sequence[ChordSegment], estimate: Sequence[ChordSegment]
) -> tuple[np.ndarray, list[str], list[str]]:
    """The pieces both annotations are cut into, as `mir_eval.chord.evaluate` scores them: intervals
    [pieces, 2] (seconds), reference labels, estimated labels. The estimate is trimmed / padded with ``N``
    to the reference's span."""
    if not reference:
        raise ValueError("the reference annotation is empty")
    ref_intervals, ref_labels = _as_arrays(reference)
    est_intervals, est_labels = _as_arrays(estimate) if estimate else (np.array([[0.0, 1e-3]]), ["N"])
    est_intervals, est_labels = mir_eval.util.adjust_intervals(
        est_intervals,
        est_labels,
        ref_intervals.min(),
        ref_intervals.max(),
        mir_eval.chord.NO_CHORD,
        mir_eval.chord.NO_CHORD,
    )
    intervals, ref_labels, est_labels = mir_eval.util.merge_labeled_intervals(
        ref_intervals, ref_labels, est_intervals, est_labels
    )
    return intervals, ref_labels, est_labels


def song_comparisons(
    reference: Sequence[ChordSegment], estimate: Sequence[ChordSegment]
) -> dict[str, tuple[float, float]]:
    """Per comparison: (correct seconds, evaluated seconds) of one song.

    The score is their ratio; the pair is what pooling over songs needs.
    """
    intervals, ref_labels, est_labels = merged_pieces(reference, estimate)
    durations = mir_eval.util.intervals_to_durations(intervals)
    result = {}
    for name, compare in _COMPARISONS.items():
        comparison = np.asarray(compare(ref_labels, est_labels), dtype=np.float64)
        covered = comparison >= 0
        result[name] = (
            float((comparison[covered] * durations[covered]).sum()),
            float(durations[covered].sum()),
        )
    return result


def score_song(reference: Sequence[ChordSegment], estimate: Sequence[ChordSegment]) -> dict[str, float]:
    """Each comparison's score (0-1) for one song; NaN where the comparison covers nothing."""
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
    #: Songs whose reference overhangs their audio by more than `MAX_REFERENCE_OVERHANG_S`: scored
    #: untrimmed (the overhang counts as wrong); the overhang in seconds.
    overhanging: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-able (NaN as None)."""

        def clean(d):
            return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in d.items()}

        return {
            "pooled": clean(self.pooled),
            "median": clean(self.median),
            "per_song": {name: clean(scores) for name, scores in self.per_song.items()},
            "songs_scored": len(self.per_song),
            "songs_skipped": len(self.skipped),
            "skipped": [{"song": name, "reason": why} for name, why in self.skipped.items()],
            "overhanging_references": dict(self.overhanging),
        }

    def table(self, metrics: Sequence[str] = CHORD_METRICS) -> str:
        """A Markdown table: one row per metric, pooled and median columns, in percent; then the songs
        left out (`skipped`) and those with a long reference overhang (`overhanging`), if any."""
        lines = ["| metric | pooled | median |", "|---|---|---|"]
        for name in metrics:
            lines.append(f"| {name} | {100 * self.pooled[name]:.2f} | {100 * self.median[name]:.2f} |")
        if self.skipped:
            lines.append("")
            lines.append(f"{len(self.per_song)} songs scored; {len(self.skipped)} songs skipped:")
            lines += [f"- {name}: {why}" for name, why in self.skipped.items()]
        if self.overhanging:
            lines.append("")
            lines.append(
                f"{len(self.overhanging)} references run more than {MAX_REFERENCE_OVERHANG_S:g} s past the end "
                "of their audio (scored as they are; the overhang counts as wrong):"
            )
            lines += [f"- {name}: {seconds:.2f} s" for name, seconds in self.overhanging.items()]
        return "\n".join(lines)


def score_songs(pairs: Mapping[str, tuple[Sequence[ChordSegment], Sequence[ChordSegment]]]) -> ChordScores:
    """Score many songs: ``pairs[name] = (reference segments, estimated segments)``."""
    if not pairs:
        raise ValueError("score_songs needs at least one song")
    correct = dict.fromkeys(CHORD_METRICS, 0.0)
    total = dict.fromkeys(CHORD_METRICS, 0.0)
    scores = ChordScores()
    for name, (reference, estimate) in pairs.items():
        comparisons = song_comparisons(reference, estimate)
        scores.per_song[name] = {}
        for metric, (c, t) in comparisons.items():
            correct[metric] += c
            total[metric] += t
            scores.per_song[name][metric] = c / t if t > 0 else float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN medians are reported as NaN
        for metric in CHORD_METRICS:
            scores.pooled[metric] = correct[metric] / total[metric] if total[metric] > 0 else float("nan")
            scores.median[metric] = float(np.nanmedian([s[metric] for s in scores.per_song.values()]))
    return scores
