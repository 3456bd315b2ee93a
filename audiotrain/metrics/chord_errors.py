"""Where a chord score is lost: the reference chords and the readings that cost a comparison the most time.

A set's score says how much time is wrong, not where. `costliest_errors` cuts every song as
`mir_eval.chord.evaluate` does (`audiotrain.metrics.chord_scores.merged_pieces`), keeps the pieces one
comparison scores wrong, and adds up their time per (song, reference chord, estimated label): a model that
reads one chord of one song wrong throughout shows as one line, a boundary a little late as many short ones.

With ``given``, only the pieces another comparison scores right count: ``costliest_errors(pairs,
"majmin_inv", given="majmin")`` is the time whose major/minor chord is right and whose bass is wrong, i.e.
what separates the two scores (`benchmarks/chords.py` prints both lists).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from audiotrain.chords.lab import ChordSegment
from audiotrain.metrics.chord_scores import CHORD_METRICS, as_segments, merged_pieces, mir_eval

import numpy as np


@dataclass(frozen=True)
class LostTime:
    """Time one comparison scores wrong on one reference chord of one song, read as one label.

    ``share`` is that time over the comparison's evaluated time in all songs, so the shares of every
    error add up to 1 minus the pooled score (without ``given``).
    """

    song: str
    start: float  # where the reference chord starts, seconds
    reference: str
    estimate: str
    seconds: float
    share: float


def costliest_errors(
    pairs: Mapping[str, tuple[Sequence[ChordSegment], Sequence[ChordSegment]]],
    metric: str,
    given: str | None = None,
    top: int = 10,
) -> list[LostTime]:
    """The `top` (song, reference chord, estimated label) errors of `metric` by time, most first.

    Args:
        pairs: ``pairs[song] = (reference segments, estimated segments)``, as `score_songs` takes them
            (`ChordSegment`s or ``(start, end, label)`` tuples).
        metric: a comparison of `audiotrain.metrics.chord_scores.CHORD_METRICS`, e.g. ``"majmin"``.
        given: another comparison; only time it scores right counts (e.g. ``"majmin"`` with
            ``"majmin_inv"``: the bass alone).
        top: how many to return (all with ``top <= 0``).
    """
    for name in (metric, given):
        if name is not None and name not in CHORD_METRICS:
            raise ValueError(f"unknown chord comparison {name!r}; expected one of {CHORD_METRICS}")
    lost: dict[tuple[str, float, str, str], float] = defaultdict(float)
    evaluated = 0.0
    mir = mir_eval()
    for song, (reference, estimate) in pairs.items():
        # Converted here too (tuples to ChordSegments, as merged_pieces does) for the reference chords'
        # starts below; merged_pieces passes ChordSegments through as they are.
        reference = as_segments(reference, f"song {song!r}: the reference")
        intervals, ref_labels, est_labels = merged_pieces(reference, estimate, song)
        durations = mir.util.intervals_to_durations(intervals)
        scores = np.asarray(getattr(mir.chord, metric)(ref_labels, est_labels), dtype=np.float64)
        wrong = scores == 0
        if given is not None:
            wrong &= np.asarray(getattr(mir.chord, given)(ref_labels, est_labels)) == 1
        evaluated += float(durations[scores >= 0].sum())
        # The reference chord a piece belongs to: the last one starting at or before it (references are
        # in time order, as mir_eval's cut needs them).
        starts = np.array([segment.start for segment in reference])
        chord_of = np.searchsorted(starts, intervals[:, 0] + 1e-9, side="right") - 1
        for i in np.flatnonzero(wrong):
            lost[(song, float(starts[chord_of[i]]), ref_labels[i], est_labels[i])] += float(durations[i])
    # A wrong piece is a scored one, so `evaluated` is positive whenever anything is listed.
    errors = [
        LostTime(song, start, ref, est, seconds, seconds / evaluated)
        for (song, start, ref, est), seconds in lost.items()
    ]
    errors.sort(key=lambda e: (-e.seconds, e.song, e.start))
    return errors[:top] if top > 0 else errors


def format_errors(errors: Sequence[LostTime]) -> str:
    """One line per error: share of the evaluated time (%), seconds, song, reference chord at its start,
    and the estimated label."""
    return "\n".join(
        f"  {100 * e.share:5.2f}%  {e.seconds:6.2f} s  {e.song}  {e.reference} at {e.start:.2f} s  read as {e.estimate}"
        for e in errors
    )
