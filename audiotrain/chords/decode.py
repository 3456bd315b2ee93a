"""Frame posteriors → chord segments → ``.lab``.

Two smoothers, both over the three heads of the model (chord type, root, bass):

- ``"median"``: each class's posterior is median-filtered over time, then the most likely class is taken
  per frame (the usual post-processing of frame-wise chord recognisers).
- ``"viterbi"``: an HMM with a self-transition prior ``p`` and the rest spread evenly over the other states
  (Cho & Bello 2014). With ``joint_bass`` (the default) its states are (chord type, root, bass) triples --
  ``N``, ``X``, and each of the 30 types x 12 roots over each of its own chord tones in the bass (1,572
  states) -- with emission ``p(type) * p(root) * p(bass | bass is a tone of the chord)``: the bass can only be
  a tone of the chord decoded with it, and a bass change is a state change that has to pay the transition
  prior like a chord change. That last factor is the bass head renormalised over each chord's tones, so the
  bass head chooses the bass among a chord's tones and leaves the choice of chord to the chord heads: summed
  over its basses, a chord's emission is its ``p(type) * p(root)``. A strong bass note therefore does not
  favour the chords that contain it. A chord's best state is its ``p(type) * p(root)`` times the share of its
  tones' bass mass on its likeliest tone, so in a near-tie the chord whose tones' bass mass is less spread
  wins, by a factor of at most its number of tones: the chord heads even between C:maj and G:maj and the bass
  head hearing E (0.9) over a little C and G, G:maj over its G (all of G:maj's share) beats C:maj over its E
  (0.9 of C:maj's). Weighing the chords by the whole bass posterior instead (``log p(chord) + w log p(bass)``)
  gained at most a few tenths of a point at its best ``w`` (`benchmarks/chords_rounds.md`, seventh round:
  decoding alone), so it was not made the default. Without ``joint_bass``, the states are the (type, root)
  chords with emission ``p(type) * p(root)``, and the bass gets its own 12-state HMM with the same prior,
  decided independently (it can then name a bass outside the chord); a bass change a frame from a chord change
  is moved onto it (`align_bass_changes`).
  ``p(type)`` alone for N and X, whose root and bass are undefined. With a model's joint chord head
  (``chord_probs``: one posterior per N, X and (type, root) pair), ``p(chord)`` comes from it instead of the
  product ``p(type) * p(root)`` (or a log-linear mix of the two, ``chord_head_weight``): that product cannot
  say "C:maj7 or E:min" without also saying E:maj7 and C:min. The joint path's segments then take the bass
  heard as each starts (`onset_bass`, ``bass_onset_frames``).

Frame ``i`` is centred at ``i / frame_rate`` seconds (centred STFT/CQT frames), so a change between frames
``i - 1`` and ``i`` becomes a boundary at ``(i - 0.5) / frame_rate``; with ``refine_boundaries`` (the
default, Viterbi only) it is placed instead where the two chords' log-probability difference, interpolated
linearly between the two frame centres, crosses zero (`boundary_offsets`). A boundary halfway between frames
is on average a quarter of a frame (23 ms at 10.8 frames per second) from the true one, which over a song's
chord changes is about 1% of its time; the interpolation wins back +0.1 to +0.2 points on every metric of
the held-out demo songs (`benchmarks/chords_rounds.md`, eleventh round).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from audiotrain._config_args import config_argument
from audiotrain.chords.lab import ChordSegment
from audiotrain.chords.vocabulary import (
    CHORD_TYPES,
    IGNORE_INDEX,
    N_INDEX,
    NUM_CHORD_TYPES,
    NUM_JOINT_CHORDS,
    NUM_PITCH_CLASSES,
    TYPE_INTERVALS,
    X_INDEX,
    decode_label,
)

import numpy as np

_EPS = 1e-12
#: Frames of the joint decoder's emissions computed at a time (bounds its temporaries).
_ROWS_AT_A_TIME = 512


@dataclass
class DecodeConfig:
    """How frame posteriors become segments.

    Attributes:
        method: ``"viterbi"`` (HMM with a self-transition prior), ``"median"`` or ``"argmax"`` (no smoothing).
        self_transition: probability of staying in the same chord from one frame to the next (viterbi).
        median_frames: width of the median filter in frames, odd (median).
        joint_bass: viterbi over (chord, bass) pairs instead of separate chord and bass paths.
        unknown_chords: whether to output ``X`` (unknown chord). Off by default: ``X`` carries no chord, every
            mir_eval comparison except ``mirex`` scores it wrong, and ``mirex`` scores it *right* against any
            reference chord (an all-``X`` transcription gets mirex 100%). The model still learns the class from
            ``X`` annotations; decoding then picks the most likely real chord (or ``N``).
        chord_head_weight: for a model with a joint chord head (viterbi): the chord states' log-probabilities
            are this weight times the joint head's plus (1 - weight) times the sum of the type and root
            heads'. 1: the joint head alone; 0: the separate heads alone.
        refine_boundaries: viterbi: place each change of the decoded path between its two frames where the
            two states' log-probabilities cross (linear interpolation), instead of halfway.
        bass_onset_frames: joint_bass viterbi: each (chord, bass) segment of the path then takes as its bass
            the chord tone with the most bass-head probability weighted by ``exp(-t / bass_onset_frames)``,
            t frames after the segment's first: a chord's bass is the note played as it starts, and walking
            lines and passing notes come after. 0: the path's own bass.
        silence_db: frames quieter than the song's playing level (the median of its sounding frames:
            `playing_level_db`) by more than this many dB are decoded as N, where the frames' levels are
            given (`decode_posteriors`' ``level_db``; `ChordPredictor` gives them). The model hears each
            frame's spectrum normalised, so a chord's fading tail, 20 dB down after its notes stop, sounds to
            it like the chord: the chord was held past its end. 0: off.
    """

    method: str = "viterbi"
    self_transition: float = 0.95
    median_frames: int = 9
    unknown_chords: bool = False
    joint_bass: bool = True
    chord_head_weight: float = 1.0
    refine_boundaries: bool = True
    bass_onset_frames: float = 6.0
    # Sixteenth round in `benchmarks/chords_rounds.md`, six checkpoints, paired over songs: majmin +0.41 on
    # the independent style's 16 songs, +0.70 on 48 more, +0.24 on the training style's, nearly all at the
    # ends of those 30 s songs. 9-12 dB gained a little more there, but a quiet passage of real music is more
    # often 12 dB under a song's median than 15.
    silence_db: float = 15.0

    def __post_init__(self):
        self._check_field_types()
        if self.method not in ("viterbi", "median", "argmax"):
            raise ValueError(
                f"DecodeConfig.method must be 'viterbi', 'median' or 'argmax', got {self.method!r}"
            )
        if not 0.0 <= self.chord_head_weight <= 1.0:
            raise ValueError(
                f"DecodeConfig.chord_head_weight must be in [0, 1], got {self.chord_head_weight}"
            )
        if not 0.0 <= float(self.bass_onset_frames) < float("inf"):
            raise ValueError(
                f"DecodeConfig.bass_onset_frames must be finite and >= 0, got {self.bass_onset_frames}"
            )
        if not 0.0 <= float(self.silence_db) < float("inf"):
            raise ValueError(f"DecodeConfig.silence_db must be finite and >= 0, got {self.silence_db}")
        if not 0.0 < self.self_transition < 1.0:
            raise ValueError(f"DecodeConfig.self_transition must be in (0, 1), got {self.self_transition}")
        if self.median_frames < 1 or self.median_frames % 2 == 0:
            raise ValueError(
                f"DecodeConfig.median_frames must be a positive odd number, got {self.median_frames}"
            )

    def _check_field_types(self) -> None:
        """Refuse a value of another type than its field's, naming the field, in the checkpoint reader's
        words: the string "false" is true to ``if config.unknown_chords``, and "0.5" met a raw TypeError.
        A NumPy number (a sweep's ``np.arange``) is taken as the Python number it holds."""
        for setting in dataclasses.fields(self):
            value = getattr(self, setting.name)
            if setting.type == "bool":
                fits, expected = isinstance(value, (bool, np.bool_)), "true or false"
                settled = bool(value) if fits else value
            elif setting.type == "int":  # a bool is an int to Python, but no count
                fits = isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
                expected, settled = "an integer", int(value) if fits else value
            elif setting.type == "float":
                fits = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
                try:
                    settled = float(value) if fits else value
                except OverflowError:  # an int past a float's range (10**400)
                    fits = False
                fits, expected = fits and math.isfinite(settled), "a finite number"
            else:  # method: its values are checked by name
                continue
            if not fits:
                raise ValueError(f"DecodeConfig.{setting.name} must be {expected}, got {value!r}")
            setattr(self, setting.name, settled)


#: The decoding settings added after checkpoints first stored their `DecodeConfig`, each with the value that
#: decodes as the versions before it did (it turns off what it added). A checkpoint whose stored decoding
#: lacks one decodes with today's default of it, and ``predict`` names these values (`cli_predictor`).
#: (``chord_head_weight`` came with the joint chord head, so a checkpoint without it has no head to weigh.
#: ``joint_bass`` came on 2026-11-23, on by default: before it the bass took a path of its own.)
DECODING_BEFORE_ADDED = {
    "joint_bass": False,
    "refine_boundaries": False,
    "bass_onset_frames": 0,
    "silence_db": 0,
}


def median_smooth(probs: np.ndarray, width: int) -> np.ndarray:
    """Median-filter each class's posterior over time.

    Parameters
    ----------
    probs : np.ndarray [frames, classes]
    width : int
        Filter length in frames (odd). Past the edges the first and last frames are repeated
        (``scipy.ndimage.median_filter(mode="nearest")``, not reflected), so the first chord's window is
        padded with itself.
    """
    if width <= 1:
        return np.asarray(probs)
    from scipy.ndimage import median_filter  # here: scipy.ndimage and its scipy.stats take ~0.2 s to import

    return median_filter(np.asarray(probs, dtype=np.float32), size=(width, 1), mode="nearest")


def viterbi(
    log_emissions: np.ndarray, log_transitions: np.ndarray, log_initial: np.ndarray | None = None
) -> np.ndarray:
    """Most likely state path of an HMM with a full transition matrix, O(frames x states²).

    Parameters
    ----------
    log_emissions : np.ndarray [frames, states]
    log_transitions : np.ndarray [states, states]
        ``log_transitions[i, j]`` = log p(state j at t | state i at t - 1).
    log_initial : np.ndarray [states], optional
        Uniform when omitted.

    Returns
    -------
    np.ndarray [frames], int64
    """
    log_emissions = np.asarray(log_emissions, dtype=np.float64)
    n_frames, n_states = log_emissions.shape
    if log_initial is None:
        log_initial = np.full(n_states, -np.log(n_states))
    score = log_initial + log_emissions[0]
    back = np.zeros((n_frames, n_states), dtype=np.int64)
    for t in range(1, n_frames):
        candidates = score[:, None] + log_transitions
        back[t] = np.argmax(candidates, axis=0)
        score = candidates[back[t], np.arange(n_states)] + log_emissions[t]
    return _backtrack(score, back)


def viterbi_self_transition(log_emissions: np.ndarray, self_transition: float) -> np.ndarray:
    """Viterbi path for a transition matrix with ``self_transition`` on the diagonal, uniform elsewhere.

    Equal to `viterbi` with that matrix, in O(frames x states): the best predecessor of state ``j`` is either
    ``j`` itself or the best state other than ``j``, which is the best or second best state overall.

    Parameters
    ----------
    log_emissions : np.ndarray [frames, states]
    self_transition : float
        Probability in (0, 1) of staying in the same state.
    """
    log_emissions = np.asarray(log_emissions, dtype=np.float64)
    n_frames, n_states = log_emissions.shape
    return _viterbi_self_transition_rows(
        lambda rows: log_emissions[rows], n_frames, n_states, self_transition
    )


def _viterbi_self_transition_rows(
    rows_of: Callable[[slice], np.ndarray], n_frames: int, n_states: int, self_transition: float
) -> np.ndarray:
    """`viterbi_self_transition` over emissions [frames, states] that ``rows_of(slice)`` gives
    `_ROWS_AT_A_TIME` frames at a time, so that they need not be held whole."""
    if n_states == 1:
        return np.zeros(n_frames, dtype=np.int64)
    log_stay = np.log(self_transition)
    log_move = np.log((1.0 - self_transition) / (n_states - 1))
    states = np.arange(n_states)
    rows = rows_of(slice(0, _ROWS_AT_A_TIME))
    score = rows[0] - np.log(n_states)
    # The one array as large as the emissions: 2 bytes a pointer for the joint decoder's 1,574 states, not 8.
    back = np.zeros((n_frames, n_states), dtype=np.min_scalar_type(n_states - 1))
    move_from = np.empty(n_states, dtype=np.int64)
    stay = np.empty(n_states)
    # The loop runs once per frame: plain ndarray methods and preallocated buffers keep its overhead small.
    for t in range(1, n_frames):
        best = score.argmax()
        best_score = score[best]
        score[best] = -np.inf
        second = score.argmax()
        score[best] = best_score
        move_from.fill(best)
        move_from[best] = second  # the best predecessor among the states != j
        np.add(score, log_stay, out=stay)
        move = score[move_from]
        move += log_move
        stays = stay >= move  # ties go to staying, which keeps segments long
        back[t] = np.where(stays, states, move_from)
        score = np.maximum(stay, move, out=move)
        if t % _ROWS_AT_A_TIME == 0:
            rows = rows_of(slice(t, t + _ROWS_AT_A_TIME))
        score += rows[t % _ROWS_AT_A_TIME]
    return _backtrack(score, back)


def _backtrack(score: np.ndarray, back: np.ndarray) -> np.ndarray:
    path = np.empty(back.shape[0], dtype=np.int64)
    path[-1] = int(np.argmax(score))
    for t in range(back.shape[0] - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def _joint_chord_log_probs(
    type_probs: np.ndarray, root_probs: np.ndarray, chord_probs: np.ndarray | None = None, weight: float = 1.0
) -> np.ndarray:
    """[frames, 2 + 30*12] log p of the joint states N, X, then (type 2, root 0..11), (type 3, root 0..11)...:
    from the type and root heads (their product), or with `chord_probs` (a joint chord head's posteriors in
    that order) ``weight * log chord_probs + (1 - weight) * (log p(type) + log p(root))``."""
    joint = None if chord_probs is None or weight == 0.0 else np.log(np.maximum(chord_probs, _EPS))
    if joint is not None and weight == 1.0:
        return joint
    log_type = np.log(np.maximum(type_probs, _EPS))
    log_root = np.log(np.maximum(root_probs, _EPS))
    chords = log_type[:, 2:, None] + log_root[:, None, :]
    separate = np.concatenate([log_type[:, :2], chords.reshape(len(log_type), -1)], axis=1)
    return separate if joint is None else weight * joint + (1.0 - weight) * separate


@functools.lru_cache(maxsize=1)
def _joint_states() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(type, root, bass) of the joint states after N and X, and the [12, chords] chord-tone indicator
    (``tones[b, c]`` = 1 if pitch class b is in chord c, chords ordered as in `_joint_chord_log_probs`)."""
    types, roots, basses = [], [], []
    tones = np.zeros((12, (NUM_CHORD_TYPES - 2) * 12))
    for t in range(2, NUM_CHORD_TYPES):
        intervals = sorted(TYPE_INTERVALS[CHORD_TYPES[t]])
        for r in range(12):
            for i in intervals:
                types.append(t)
                roots.append(r)
                basses.append((r + i) % 12)
                tones[(r + i) % 12, (t - 2) * 12 + r] = 1.0
    return np.array(types), np.array(roots), np.array(basses), tones


def _joint_bass_viterbi(
    chord_log: np.ndarray, bass_probs: np.ndarray, self_transition: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(chord_type, root, bass) per frame from one Viterbi path over N, X and (type, root, bass) states, and
    the path's `boundary_offsets`; `chord_log` [frames, 2 + 360] are the chords' log-probabilities
    (`_joint_chord_log_probs`)."""
    types, roots, basses, tones = _joint_states()
    bass_probs = np.maximum(bass_probs, _EPS)
    # log p(bass | bass in the chord's tones): the bass head renormalised over each chord's tones.
    log_in_chord = np.log(bass_probs @ tones)  # [frames, 360]
    chord_index = (types - 2) * 12 + roots

    # The emissions [frames, 2 + 1,572] float64 are 8 MB per minute of audio at 10.8 fps: an hour's song
    # held 490 MB of them. Made for the frames the Viterbi pass and the boundaries read, as they read them.
    def rows_of(rows: slice | np.ndarray) -> np.ndarray:
        block = (
            chord_log[rows, 2 + chord_index]
            if isinstance(rows, slice)
            else chord_log[rows][:, 2 + chord_index]
        )
        block += np.log(bass_probs[rows][:, basses])
        block -= log_in_chord[rows][:, chord_index]
        return np.concatenate([chord_log[rows, :2], block], axis=1)

    states = _viterbi_self_transition_rows(rows_of, len(chord_log), 2 + len(types), self_transition)
    chord = np.maximum(states - 2, 0)
    no_chord = states < 2
    return (
        np.where(no_chord, states, types[chord]),
        np.where(no_chord, IGNORE_INDEX, roots[chord]),
        np.where(no_chord, IGNORE_INDEX, basses[chord]),
        _boundary_offsets_rows(rows_of, states),
    )


def onset_bass(
    chord_type: np.ndarray,
    root: np.ndarray,
    bass: np.ndarray,
    bass_probs: np.ndarray,
    time_constant: float,
) -> np.ndarray:
    """The bass of each run of equal (chord_type, root, bass) frames chosen again among its chord's tones:
    the one with the largest ``sum_t exp(-t / time_constant) * bass_probs[first + t]`` over the run (t = 0
    at its first frame). Runs of N and X keep theirs (`IGNORE_INDEX`).

    On the held-out demo songs of both styles the labelled bass is the one heard at the chord's start; a
    Viterbi path weighs every frame of a segment alike, so a walking line's later notes can outvote it
    (`benchmarks/chords_rounds.md`, eleventh round: +1.2 majmin_inv and sevenths_inv, every seed higher).
    """
    chord_type, root = np.asarray(chord_type), np.asarray(root)
    bass_probs = np.asarray(bass_probs, dtype=np.float64)
    out = np.array(bass, dtype=np.int64, copy=True)
    n = len(out)
    if n == 0:
        return out
    _, _, _, tones = _joint_states()
    change = np.flatnonzero((np.diff(chord_type) != 0) | (np.diff(root) != 0) | (np.diff(out) != 0)) + 1
    for first, stop in zip(np.concatenate([[0], change]), np.concatenate([change, [n]])):
        if chord_type[first] < 2:  # N or X: no bass
            continue
        weights = np.exp(-np.arange(stop - first) / time_constant)
        mass = weights @ bass_probs[first:stop]  # [12]
        in_chord = tones[:, (chord_type[first] - 2) * NUM_PITCH_CLASSES + root[first]] > 0
        out[first:stop] = int(np.argmax(np.where(in_chord, mass, -np.inf)))
    return out


def align_bass_changes(chord_states: np.ndarray, bass: np.ndarray) -> np.ndarray:
    """The separate bass path (`bass`, [frames]) with each change that lies one frame from a change of the
    chord path (`chord_states`) moved onto it.

    The two paths are two HMMs, each changing where its own frames tip, so at a chord change whose bass
    changes too they often land a frame apart. The frame between read the old chord over the new bass (or
    the reverse): a slash chord nobody played (``G:maj/4`` between G and C), a frame long, and shorter still
    with ``refine_boundaries``, which moves the chord's boundary within its frame gap but not the bass's.
    The joint path has none: a chord and its bass change there as one state. A bass change two or more
    frames from any chord change is the path's own (a walking line under one chord) and stays.
    """
    chord_states = np.asarray(chord_states)
    bass = np.array(bass, dtype=np.int64, copy=True)
    chord_changes = set((np.flatnonzero(chord_states[1:] != chord_states[:-1]) + 1).tolist())
    for j in (np.flatnonzero(bass[1:] != bass[:-1]) + 1).tolist():  # the bass changes into frame j
        if j in chord_changes:
            continue
        if j + 1 in chord_changes:  # a frame early: frame j keeps the bass before it
            bass[j] = bass[j - 1]
        elif j - 1 in chord_changes:  # a frame late: the chord's first frame takes the new bass
            bass[j - 1] = bass[j]
    return bass


def boundary_offsets(log_emissions: np.ndarray, states: np.ndarray) -> np.ndarray:
    """Where each change of a state path lies between its two frames: [frames] offsets, in frames, of the
    boundary before frame ``i`` from ``i - 0.5`` (0 where the path does not change).

    For a change from state ``a`` at frame ``i - 1`` to ``b`` at ``i``, ``d = log p(a) - log p(b)`` is
    interpolated linearly between the two frame centres; the boundary is where it crosses zero,
    ``i - 1 + d[i-1] / (d[i-1] - d[i])``, strictly inside (-0.5, 0.5) of the midpoint so that no segment
    loses its frame. Where the two frames do not disagree that way (the prior, not the frames, made the
    change), the boundary stays halfway.
    """
    log_emissions = np.asarray(log_emissions, dtype=np.float64)
    return _boundary_offsets_rows(lambda rows: log_emissions[rows], states)


def _boundary_offsets_rows(rows_of: Callable[[np.ndarray], np.ndarray], states: np.ndarray) -> np.ndarray:
    """`boundary_offsets` with the emissions of the frames it reads given by ``rows_of(frame indices)``."""
    states = np.asarray(states, dtype=np.int64)
    offsets = np.zeros(len(states))
    change = np.flatnonzero(states[1:] != states[:-1]) + 1
    if len(change) == 0:
        return offsets
    before, after = states[change - 1], states[change]
    d_before, d_after = np.empty(len(change)), np.empty(len(change))
    for first in range(0, len(change), _ROWS_AT_A_TIME):  # (a few hundred changes' rows at a time)
        part = slice(first, first + _ROWS_AT_A_TIME)
        k = np.arange(len(change[part]))
        rows = rows_of(change[part] - 1)
        d_before[part] = rows[k, before[part]] - rows[k, after[part]]
        rows = rows_of(change[part])
        d_after[part] = rows[k, before[part]] - rows[k, after[part]]
    crossing = (d_before > 0) & (d_after < 0) & np.isfinite(d_before) & np.isfinite(d_after)
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(crossing, d_before / (d_before - d_after), 0.5)
    offsets[change] = np.clip(fraction, 0.01, 0.99) - 0.5
    return offsets


#: The frames whose median is a song's playing level: those within this many dB of its loud frames (the
#: 99th percentile of frame levels, not the loudest: one drum hit). A recording that is mostly a noise
#: floor (a voice memo with long pauses, a hidden track after minutes of tape hiss) had its median at that
#: floor, and chords were written over the hiss; a frame 30 dB under the loud ones plays no chord to hear.
SOUNDING_RANGE_DB = 30.0


def playing_level_db(level_db: np.ndarray) -> float:
    """A song's playing level: the median level of its sounding frames (`SOUNDING_RANGE_DB`), so that a
    noise floor, however long, is not taken for it; of a song that sounds throughout, its median frame."""
    level_db = np.asarray(level_db, dtype=np.float64)
    loud = np.percentile(level_db, 99)
    return float(np.median(level_db[level_db >= loud - SOUNDING_RANGE_DB]))


def quiet_frames(level_db: np.ndarray, silence_db: float) -> np.ndarray:
    """[frames] bool: the frames quieter than the song's playing level (`playing_level_db`: the median of its
    sounding frames) by more than `silence_db` dB (none where `silence_db` is 0). The median, not the loudest
    frame: most of a song's frames play, so its median is its playing level whatever its loudest hit; a
    fade-out is N only once it is that far down."""
    level_db = np.asarray(level_db, dtype=np.float64)
    if silence_db <= 0 or len(level_db) == 0:
        return np.zeros(len(level_db), dtype=bool)
    return level_db < playing_level_db(level_db) - silence_db


def decode_frames(
    type_probs: np.ndarray,
    root_probs: np.ndarray,
    bass_probs: np.ndarray | None = None,
    config: DecodeConfig | None = None,
    chord_probs: np.ndarray | None = None,
    level_db: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smoothed per-frame (chord_type, root, bass) indices from posteriors (see `decode_frames_and_offsets`,
    which also says where between frames each change lies)."""
    return decode_frames_and_offsets(type_probs, root_probs, bass_probs, config, chord_probs, level_db)[:3]


def decode_frames_and_offsets(
    type_probs: np.ndarray,
    root_probs: np.ndarray,
    bass_probs: np.ndarray | None = None,
    config: DecodeConfig | None = None,
    chord_probs: np.ndarray | None = None,
    level_db: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Smoothed per-frame (chord_type, root, bass) indices from posteriors.

    Parameters
    ----------
    type_probs : np.ndarray [frames, 32]
        Chord-type posteriors (softmax outputs).
    root_probs, bass_probs : np.ndarray [frames, 12]
        Root and bass posteriors; the bass is taken equal to the root when ``bass_probs`` is None.
    config : DecodeConfig or dict, optional
        A dict is read as ``DecodeConfig(**config)`` (an unknown field is refused by name).
    chord_probs : np.ndarray [frames, 2 + 30 * 12], optional
        Posteriors of a joint chord head (N, X, then the 12 roots of each type), mixed into the Viterbi's
        chord states by ``config.chord_head_weight``; the median and argmax methods use the separate heads.
    level_db : np.ndarray [frames], optional
        Each frame's level in dB (e.g. `ChordPredictor`'s ``SongPosteriors.level_db``): frames quieter
        than the song's median by more than ``config.silence_db`` are N (`quiet_frames`).

    Returns
    -------
    (chord_type, root, bass, offsets) : three np.ndarray [frames], int64, and one float64
        Root and bass are ``IGNORE_INDEX`` on N and X frames. ``offsets`` are the chord path's
        `boundary_offsets` with ``refine_boundaries`` (viterbi), else 0.
    """
    # A dict of DecodeConfig's fields is read as one; it used to fail mid-decoding ('dict' object has no
    # attribute 'unknown_chords'), and an empty one was taken as the defaults.
    config = (
        DecodeConfig()
        if config is None
        else config_argument(DecodeConfig, config, "config (the decoding settings)")
    )
    # type_probs and chord_probs are private copies: the silence gate and the X rule below write into them.
    type_probs, root_probs = np.array(type_probs, np.float64), np.asarray(root_probs, np.float64)
    if type_probs.ndim != 2 or type_probs.shape[1] != NUM_CHORD_TYPES:
        raise ValueError(f"type_probs must be [frames, {NUM_CHORD_TYPES}], got {type_probs.shape}")
    if root_probs.shape != (len(type_probs), 12):
        raise ValueError(f"root_probs must be [{len(type_probs)}, 12], got {root_probs.shape}")
    if bass_probs is not None and np.shape(bass_probs) != (len(type_probs), 12):
        raise ValueError(f"bass_probs must be [{len(type_probs)}, 12], got {np.shape(bass_probs)}")
    if chord_probs is not None and np.shape(chord_probs) != (len(type_probs), NUM_JOINT_CHORDS):
        raise ValueError(
            f"chord_probs must be [{len(type_probs)}, {NUM_JOINT_CHORDS}], got {np.shape(chord_probs)}"
        )
    if level_db is not None and np.shape(level_db) != (len(type_probs),):
        raise ValueError(f"level_db must be [{len(type_probs)}], got {np.shape(level_db)}")
    posteriors = {
        "type_probs": type_probs,
        "root_probs": root_probs,
        "bass_probs": bass_probs,
        "chord_probs": chord_probs,
    }
    for name, probs in posteriors.items():
        if probs is not None and not np.all(np.isfinite(probs)):
            # NaN posteriors (NaN features, a diverged model) would decode to arbitrary chords, X included.
            raise ValueError(
                f"{name} holds {int(np.sum(~np.isfinite(probs)))} non-finite values (NaN or inf)"
            )
        if probs is not None and np.any(np.asarray(probs) < 0):
            # An ensemble's averaged log-probabilities decoded under viterbi as one N segment for the whole
            # song, with no message (the log of a negative number): probabilities are needed.
            raise ValueError(
                f"{name} holds {int(np.sum(np.asarray(probs) < 0))} negative values (lowest "
                f"{float(np.asarray(probs).min()):.3g}); decoding reads probabilities (softmax outputs), not "
                "log-probabilities: pass np.exp of them (an average of log-probabilities too)"
            )
    if len(type_probs) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), empty.copy(), np.zeros(0)
    offsets = np.zeros(len(type_probs))
    if chord_probs is not None:
        chord_probs = np.array(chord_probs, np.float64)
    if level_db is not None:
        quiet = quiet_frames(level_db, config.silence_db)  # N there, whatever the heads heard
        for probs in (type_probs, chord_probs):
            if probs is not None:
                probs[quiet] = 0.0
                probs[quiet, N_INDEX] = 1.0
    if not config.unknown_chords:
        # No renormalisation needed: it adds the same log-constant to every state of a frame.
        for probs in (type_probs, chord_probs):
            if probs is not None:
                probs[:, X_INDEX] = 0.0
    if config.method == "viterbi":
        chord_log = _joint_chord_log_probs(type_probs, root_probs, chord_probs, config.chord_head_weight)
    if config.method == "viterbi" and config.joint_bass and bass_probs is not None:
        chord_type, root, bass, offsets = _joint_bass_viterbi(
            chord_log, np.asarray(bass_probs, np.float64), config.self_transition
        )
        if config.bass_onset_frames > 0:
            bass = onset_bass(chord_type, root, bass, bass_probs, config.bass_onset_frames)
    elif config.method == "viterbi":
        states = viterbi_self_transition(chord_log, config.self_transition)
        # The chord path's changes; a change of the separate bass path alone stays halfway.
        offsets = boundary_offsets(chord_log, states)
        chord_type = np.where(states < 2, states, 2 + (states - 2) // 12)
        root = np.where(states < 2, IGNORE_INDEX, (states - 2) % 12)
        if bass_probs is None:
            bass = root.copy()
        else:
            log_bass = np.log(np.maximum(np.asarray(bass_probs, np.float64), _EPS))
            bass = align_bass_changes(states, viterbi_self_transition(log_bass, config.self_transition))
    else:
        width = config.median_frames if config.method == "median" else 1
        chord_type = np.argmax(median_smooth(type_probs, width), axis=1)
        root = np.argmax(median_smooth(root_probs, width), axis=1)
        bass = root.copy() if bass_probs is None else np.argmax(median_smooth(bass_probs, width), axis=1)
    no_chord = (chord_type == N_INDEX) | (chord_type == X_INDEX)
    root = np.where(no_chord, IGNORE_INDEX, root).astype(np.int64)
    bass = np.where(no_chord, IGNORE_INDEX, bass).astype(np.int64)
    if config.method != "viterbi" or not config.refine_boundaries:
        offsets = np.zeros(len(chord_type))
    return chord_type.astype(np.int64), root, bass, offsets


def frames_to_segments(
    chord_type: Sequence[int] | np.ndarray,
    root: Sequence[int] | np.ndarray,
    bass: Sequence[int] | np.ndarray,
    frame_rate: float,
    duration: float | None = None,
    boundary_offsets: np.ndarray | None = None,
) -> list[ChordSegment]:
    """Merge runs of equal frame labels into segments.

    Parameters
    ----------
    chord_type, root, bass : [frames] int
        Per-frame vocabulary indices (root and bass ignored on N and X).
    frame_rate : float
        Frames per second (sample rate / hop length).
    duration : float, optional
        End time of the last segment in seconds (the audio length); default: half a frame after the last
        frame's centre. Frames centred after ``duration`` are dropped, and the last segment is stretched or
        cut to end exactly there.
    boundary_offsets : [frames] float, optional
        Where the change into frame ``i`` lies, in frames from ``i - 0.5``, each in (-0.5, 0.5)
        (`boundary_offsets`; values further out are clipped to +-0.49, so that a change stays within its
        frame gap); default: halfway between the frames.
    """
    if not (np.isfinite(frame_rate) and frame_rate > 0):
        raise ValueError(f"frame_rate must be a number of frames per second > 0, got {frame_rate!r}")
    chord_type = np.asarray(chord_type, dtype=np.int64).reshape(-1)
    n = len(chord_type)
    # One value per frame each; unchecked, numpy's broadcasting error named none of them.
    lengths = {"root": np.size(root), "bass": np.size(bass)}
    if boundary_offsets is not None:
        lengths["boundary_offsets"] = np.size(boundary_offsets)
    if any(length != n for length in lengths.values()):
        given = ", ".join(f"{name} {length}" for name, length in lengths.items())
        raise ValueError(f"frames_to_segments needs one value per frame: chord_type has {n} frames, {given}")
    if n == 0:
        return []
    if duration is not None and not (np.isfinite(duration) and duration > 0):
        raise ValueError(f"duration must be a number of seconds > 0 (or None), got {duration!r}")
    no_chord = (chord_type == N_INDEX) | (chord_type == X_INDEX)
    root = np.where(no_chord, IGNORE_INDEX, np.asarray(root, dtype=np.int64).reshape(-1))
    bass = np.asarray(bass, dtype=np.int64).reshape(-1)
    bass = np.where(no_chord, IGNORE_INDEX, np.where(bass < 0, root, bass))
    # Runs of equal (type, root, bass), found with numpy; only one label per run is formatted.
    changed = np.flatnonzero((np.diff(chord_type) != 0) | (np.diff(root) != 0) | (np.diff(bass) != 0)) + 1
    starts = np.concatenate([[0], changed])
    stops = np.concatenate([changed, [n]])
    # (Python floats, as ChordSegment declares: numpy's showed as np.float64(1.93...) in every repr)
    end_time = float(duration if duration is not None else (n - 0.5) / frame_rate)
    shift = np.zeros(n + 1)
    if boundary_offsets is not None:
        shift[:n] = np.clip(np.asarray(boundary_offsets, dtype=np.float64).reshape(-1)[:n], -0.49, 0.49)
    segments: list[ChordSegment] = []
    for first, stop in zip(starts, stops):
        label = decode_label(chord_type[first], root[first], bass[first])
        start = 0.0 if first == 0 else float((first - 0.5 + shift[first]) / frame_rate)
        end = end_time if stop == n else min(float((stop - 0.5 + shift[stop]) / frame_rate), end_time)
        if start >= end_time:
            break  # frames past the end of the audio (padding) are dropped
        if segments and segments[-1].label == label:
            segments[-1] = ChordSegment(segments[-1].start, end, label)
        else:
            segments.append(ChordSegment(start, end, label))
    # The last segment reaches the end of the audio even when the frames after it were dropped.
    segments[-1] = ChordSegment(segments[-1].start, end_time, segments[-1].label)
    return segments


def decode_posteriors(
    type_probs: np.ndarray,
    root_probs: np.ndarray,
    bass_probs: np.ndarray | None,
    frame_rate: float,
    config: DecodeConfig | None = None,
    duration: float | None = None,
    chord_probs: np.ndarray | None = None,
    level_db: np.ndarray | None = None,
) -> list[ChordSegment]:
    """Posteriors of one song → chord segments with ``mir_eval``-parsable labels (see
    `decode_frames_and_offsets`)."""
    chord_type, root, bass, offsets = decode_frames_and_offsets(
        type_probs, root_probs, bass_probs, config, chord_probs, level_db
    )
    return frames_to_segments(chord_type, root, bass, frame_rate, duration, boundary_offsets=offsets)
