"""Decoding frame posteriors: median filter, Viterbi (checked by brute force), segments and labels."""

import itertools
import tracemalloc
from dataclasses import replace

from audiotrain.chords.decode import (
    DecodeConfig,
    boundary_offsets,
    decode_frames,
    decode_frames_and_offsets,
    decode_posteriors,
    frames_to_segments,
    median_smooth,
    onset_bass,
    playing_level_db,
    quiet_frames,
    viterbi,
    viterbi_self_transition,
)
from audiotrain.chords.vocabulary import (
    CHORD_TYPES,
    N_INDEX,
    NUM_JOINT_CHORDS,
    TYPE_INTERVALS,
    X_INDEX,
    encode_label,
)

import mir_eval
import numpy as np
import pytest


def _posteriors(labels, rng, sharpness=4.0, noise=1.0):
    """One-hot-ish posteriors for a frame sequence of labels, with random noise."""
    n = len(labels)
    logits = {
        "type": rng.normal(0, noise, (n, 32)),
        "root": rng.normal(0, noise, (n, 12)),
        "bass": rng.normal(0, noise, (n, 12)),
    }
    for i, label in enumerate(labels):
        index = encode_label(label)
        logits["type"][i, index.chord_type] += sharpness
        if index.root >= 0:
            logits["root"][i, index.root] += sharpness
            logits["bass"][i, index.bass] += sharpness

    def softmax(x):
        e = np.exp(x - x.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    return softmax(logits["type"]), softmax(logits["root"]), softmax(logits["bass"])


def _chord_head(labels, rng, sharpness=4.0, noise=1.0):
    """One-hot-ish posteriors of a joint chord head (N, X, then the 12 roots of each type) for `labels`."""
    logits = rng.normal(0, noise, (len(labels), NUM_JOINT_CHORDS))
    for i, label in enumerate(labels):
        index = encode_label(label)
        joint = index.chord_type if index.chord_type < 2 else 2 + (index.chord_type - 2) * 12 + index.root
        logits[i, joint] += sharpness
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _brute_force(log_emissions, log_transitions, log_initial):
    best, best_path = -np.inf, None
    n_frames, n_states = log_emissions.shape
    for path in itertools.product(range(n_states), repeat=n_frames):
        score = log_initial[path[0]] + log_emissions[0, path[0]]
        for t in range(1, n_frames):
            score += log_transitions[path[t - 1], path[t]] + log_emissions[t, path[t]]
        if score > best:
            best, best_path = score, path
    return np.array(best_path)


def test_viterbi_matches_brute_force(rng):
    for _ in range(20):
        n_frames, n_states = 5, 3
        log_emissions = np.log(rng.dirichlet(np.ones(n_states), n_frames))
        log_transitions = np.log(rng.dirichlet(np.ones(n_states), n_states))
        log_initial = np.log(rng.dirichlet(np.ones(n_states)))
        expected = _brute_force(log_emissions, log_transitions, log_initial)
        np.testing.assert_array_equal(viterbi(log_emissions, log_transitions, log_initial), expected)


# 0.05 and 0.2 are below 1 / states: moving to another state beats staying, so the best state's own best
# predecessor must be the second best state, never itself (DecodeConfig accepts any value in (0, 1)).
@pytest.mark.parametrize("self_transition", [0.05, 0.2, 0.3, 0.8, 0.99])
def test_fast_self_transition_viterbi_matches_brute_force(rng, self_transition):
    n_states = 4
    transitions = np.full((n_states, n_states), (1 - self_transition) / (n_states - 1))
    np.fill_diagonal(transitions, self_transition)
    for _ in range(15):
        log_emissions = np.log(rng.dirichlet(np.ones(n_states) * 0.7, 6))
        expected = _brute_force(log_emissions, np.log(transitions), np.full(n_states, -np.log(n_states)))
        np.testing.assert_array_equal(viterbi_self_transition(log_emissions, self_transition), expected)


def test_fast_viterbi_matches_full_matrix_on_longer_sequences(rng):
    n_states, p = 30, 0.9
    transitions = np.full((n_states, n_states), (1 - p) / (n_states - 1))
    np.fill_diagonal(transitions, p)
    log_emissions = np.log(rng.dirichlet(np.ones(n_states) * 0.3, 200))
    np.testing.assert_array_equal(
        viterbi_self_transition(log_emissions, p), viterbi(log_emissions, np.log(transitions))
    )


def test_fast_viterbi_breaks_ties_by_staying_so_equal_paths_give_one_segment_not_one_a_frame():
    # two states, p(stay) = p(move) = 0.5 and equal emissions: every step is a tie
    assert viterbi_self_transition(np.zeros((6, 2)), 0.5).tolist() == [0] * 6
    # One state has nowhere to move to (its move probability would divide by zero states).
    assert viterbi_self_transition(np.zeros((4, 1)), 0.9).tolist() == [0] * 4


@pytest.mark.parametrize("method", ["median", "viterbi"])
def test_smoothing_removes_single_frame_blips(rng, method):
    labels = ["C:maj"] * 20 + ["G:7/3"] + ["C:maj"] * 10 + ["A:min"] * 20 + ["N"] + ["A:min"] * 10
    type_p, root_p, bass_p = _posteriors(labels, rng, sharpness=6.0, noise=0.1)
    config = DecodeConfig(method=method, median_frames=5, self_transition=0.99)
    segments = decode_posteriors(type_p, root_p, bass_p, frame_rate=10.0, config=config)
    assert [s.label for s in segments] == ["C:maj", "A:min"]
    # Frame 31 is centred at 3.1 s: the boundary lies between it and frame 30, halfway without refinement.
    assert 3.0 < segments[1].start < 3.1
    if method == "viterbi":
        halfway = replace(config, refine_boundaries=False)
        segments = decode_posteriors(type_p, root_p, bass_p, frame_rate=10.0, config=halfway)
        assert segments[1].start == pytest.approx(3.05)
    # the unsmoothed argmax keeps the blips
    raw = decode_posteriors(type_p, root_p, bass_p, 10.0, DecodeConfig(method="argmax"))
    assert [s.label for s in raw] == ["C:maj", "G:7/3", "C:maj", "A:min", "N", "A:min"]


def test_decode_frames_recovers_inversions_and_ignores_root_on_no_chord(rng):
    labels = ["N"] * 5 + ["E:min7/b7"] * 10 + ["X"] * 5
    posteriors = _posteriors(labels, rng, sharpness=8.0, noise=0.1)
    chord_type, root, bass = decode_frames(*posteriors, config=DecodeConfig(unknown_chords=True))
    assert list(chord_type[:5]) == [0] * 5 and list(root[:5]) == [-1] * 5
    assert list(chord_type[-5:]) == [1] * 5 and list(bass[-5:]) == [-1] * 5
    assert set(chord_type[5:15]) == {CHORD_TYPES.index("min7")}
    assert set(root[5:15]) == {4} and set(bass[5:15]) == {2}


@pytest.mark.parametrize("method", ["viterbi", "median", "argmax"])
def test_unknown_chords_are_not_output_unless_asked_for(rng, method):
    """mir_eval's mirex scores an estimated X as right against any chord; by default X frames decode to the
    most likely real chord, here the C:maj each X frame gives the second-highest probability."""
    labels = ["C:maj"] * 10 + ["X"] * 10 + ["N"] * 5
    type_probs, root_probs, bass_probs = _posteriors(labels, rng, sharpness=8.0, noise=0.1)
    type_probs[10:20, CHORD_TYPES.index("maj")] += 0.1
    root_probs[10:20, 0] += 1.0
    chord_type, root, _ = decode_frames(type_probs, root_probs, bass_probs, DecodeConfig(method=method))
    assert 1 not in set(chord_type)
    assert set(chord_type[:20]) == {CHORD_TYPES.index("maj")} and set(root[:20]) == {0}
    assert set(chord_type[20:]) == {0}
    allowed = decode_frames(
        type_probs, root_probs, bass_probs, DecodeConfig(method=method, unknown_chords=True)
    )
    assert set(allowed[0][12:18]) == {1}


def test_unknown_chords_are_not_output_from_a_joint_chord_head_unless_asked_for(rng):
    """The default model decodes from its joint chord head alone (chord_head_weight 1): X stays out of the
    output there too, where the head is sure of X and holds C:maj second."""
    labels = ["C:maj"] * 10 + ["X"] * 10 + ["N"] * 5
    type_probs, root_probs, bass_probs = _posteriors(labels, rng, sharpness=8.0, noise=0.1)
    chord_probs = _chord_head(labels, rng, sharpness=8.0, noise=0.1)
    chord_probs[10:20, 2 + (CHORD_TYPES.index("maj") - 2) * 12] += 0.1
    chord_type, root, _ = decode_frames(type_probs, root_probs, bass_probs, chord_probs=chord_probs)
    assert 1 not in set(chord_type)
    assert set(chord_type[:20]) == {CHORD_TYPES.index("maj")} and set(root[:20]) == {0}
    config = DecodeConfig(unknown_chords=True)
    allowed = decode_frames(type_probs, root_probs, bass_probs, config, chord_probs=chord_probs)
    assert set(allowed[0][12:18]) == {1}


def test_segments_cover_the_song_and_parse_in_mir_eval(rng):
    labels = ["N"] * 3 + ["C:maj(9)/3"] * 4 + ["Bb:7(b9)"] * 5
    segments = decode_posteriors(*_posteriors(labels, rng, 8.0, 0.1), frame_rate=4.0, duration=3.2)
    assert segments[0].start == 0.0 and segments[-1].end == 3.2
    assert all(a.end == b.start for a, b in zip(segments, segments[1:]))
    intervals = np.array([[s.start, s.end] for s in segments])
    mir_eval.chord.validate([s.label for s in segments], [s.label for s in segments])
    mir_eval.util.validate_intervals(intervals)
    assert [s.label for s in segments] == ["N", "C:maj(9)/3", "Bb:7(b9)"]


def test_frames_to_segments_merges_runs():
    segments = frames_to_segments([2, 2, 3, 3, 0], [0, 0, 9, 9, -1], [0, 0, 9, 0, -1], frame_rate=2.0)
    assert [(s.start, s.end, s.label) for s in segments] == [
        (0.0, 0.75, "C:maj"), (0.75, 1.25, "A:min"), (1.25, 1.75, "A:min/b3"), (1.75, 2.25, "N"),
    ]  # fmt: skip


def test_a_change_exactly_at_the_audios_end_adds_no_zero_length_segment():
    """G:min's run starts at (3 - 0.5) / 10 = 0.25 s, the duration: nothing of it is in the audio (written
    out, it would be a zero-length line of the .lab)."""
    segments = frames_to_segments([2, 2, 2, 3, 3], [0, 0, 0, 7, 7], [0, 0, 0, 7, 7], 10.0, duration=0.25)
    assert [(s.start, s.end, s.label) for s in segments] == [(0.0, 0.25, "C:maj")]


def test_boundary_offsets_past_half_a_frame_are_kept_inside_their_frame_gap():
    """Offsets of 0.9 frame would put a change in the next frame gap (and two changes could cross): each
    moves at most 0.49 frame from halfway."""
    offsets = np.array([0.0, 0.0, 0.9, 0.0, -0.9, 0.0])
    segments = frames_to_segments([2, 2, 3, 3, 2, 2], [0, 0, 7, 7, 0, 0], [0, 0, 7, 7, 0, 0], 10.0,
                                  boundary_offsets=offsets)  # fmt: skip
    assert [s.label for s in segments] == ["C:maj", "G:min", "C:maj"]
    assert segments[1].start == pytest.approx(0.199) and segments[1].end == pytest.approx(0.301)


def test_frames_to_segments_refuses_per_frame_arrays_of_other_lengths():
    """numpy's "operands could not be broadcast" named none of them."""
    with pytest.raises(ValueError, match="one value per frame: chord_type has 3 frames, root 4, bass 4"):
        frames_to_segments([1, 1, 2], [0, 0, 7, 7], [-1, -1, -1, -1], 10.0)
    with pytest.raises(ValueError, match="chord_type has 2 frames, root 2, bass 2, boundary_offsets 1"):
        frames_to_segments([2, 2], [0, 0], [0, 0], 10.0, boundary_offsets=np.zeros(1))


def test_median_smooth_and_config_validation():
    probs = np.zeros((7, 2), np.float32)
    probs[:, 0] = 1
    probs[3] = [0, 1]
    smoothed = median_smooth(probs, 3)
    assert smoothed[3, 0] == 1 and smoothed[3, 1] == 0
    with pytest.raises(ValueError, match="method"):
        DecodeConfig(method="beam")
    with pytest.raises(ValueError, match="odd"):
        DecodeConfig(median_frames=4)
    with pytest.raises(ValueError, match=r"type_probs must be \[frames, 32\]"):
        decode_frames(np.zeros((3, 30)), np.zeros((3, 12)))


@pytest.mark.parametrize(
    "setting, message",
    [
        ({"unknown_chords": "false"}, "unknown_chords must be true or false, got 'false'"),
        ({"joint_bass": "no"}, "joint_bass must be true or false, got 'no'"),
        ({"refine_boundaries": 0}, "refine_boundaries must be true or false, got 0"),
        ({"self_transition": "0.5"}, "self_transition must be a finite number, got '0.5'"),
        ({"bass_onset_frames": "6"}, "bass_onset_frames must be a finite number, got '6'"),
        ({"chord_head_weight": True}, "chord_head_weight must be a finite number, got True"),
        ({"median_frames": 9.0}, "median_frames must be an integer, got 9.0"),
        ({"median_frames": True}, "median_frames must be an integer, got True"),
    ],
)
def test_a_decode_config_built_in_python_refuses_another_type_by_name(setting, message):
    """As a checkpoint's decode settings are: "false" was kept, and true to `if config.unknown_chords`
    (X came out), and self_transition "0.5" met a raw TypeError."""
    with pytest.raises(ValueError, match=f"^DecodeConfig.{message}$"):
        DecodeConfig(**setting)


def test_a_decode_config_takes_numpy_numbers_as_python_ones():
    """A sweep's values (np.arange, np.bool_) are the numbers they hold, and stay JSON-writable."""
    config = DecodeConfig(
        median_frames=np.int64(5), self_transition=np.float32(0.5), joint_bass=np.bool_(False)
    )
    assert (config.median_frames, config.self_transition, config.joint_bass) == (5, 0.5, False)
    assert [type(v) for v in (config.median_frames, config.self_transition, config.joint_bass)] == [
        int,
        float,
        bool,
    ]


def test_the_decoders_config_may_be_a_dict_of_its_fields_and_nothing_else(rng):
    """`decode_posteriors(..., config={"method": "argmax"})` failed mid-decoding: 'dict' object has no
    attribute 'unknown_chords' (and an empty dict was taken as the defaults without a look)."""
    posteriors = _posteriors(["C:maj"] * 4 + ["G:7"] * 4, rng, 8.0, 0.1)
    as_config = decode_posteriors(*posteriors, frame_rate=4.0, config=DecodeConfig(method="argmax"))
    assert decode_posteriors(*posteriors, frame_rate=4.0, config={"method": "argmax"}) == as_config
    with pytest.raises(
        ValueError, match=r"^config \(the decoding settings\): unknown field 'metod'; did you mean"
    ):
        decode_posteriors(*posteriors, frame_rate=4.0, config={"metod": "argmax"})
    with pytest.raises(
        TypeError, match=r"^config \(the decoding settings\): expected a DecodeConfig .*got str"
    ):
        decode_frames(*posteriors, config="argmax")
    with pytest.raises(ValueError, match=r"^DecodeConfig.median_frames must be an integer, got 9.0$"):
        decode_frames(*posteriors, config={"median_frames": 9.0})


def test_median_smooth_repeats_the_edge_frames_as_its_docstring_says():
    # Frame 0's window, repeated ("nearest"): [0.9, 0.9, 0.9, 0.1, 0.8], median 0.9. Reflected it would be
    # [0.1, 0.9, 0.9, 0.1, 0.8], median 0.8: the first frame's value would be lost.
    probs = np.array([[0.9], [0.1], [0.8], [0.8], [0.8]], np.float32)
    np.testing.assert_allclose(median_smooth(probs, 5)[:, 0], [0.9, 0.8, 0.8, 0.8, 0.8])


def test_segments_end_exactly_at_the_duration():
    # frames beyond the audio (padding) are dropped, and the last kept segment reaches the end
    segments = frames_to_segments(
        [2, 2, 2, 3, 3, 0, 0], [0, 0, 0, 2, 2, -1, -1], [0] * 7, frame_rate=2.0, duration=1.6
    )
    assert [(s.start, s.end, s.label) for s in segments] == [(0.0, 1.25, "C:maj"), (1.25, 1.6, "D:min/b7")]
    # a duration longer than the frames stretches the last segment
    assert frames_to_segments([2, 2], [0, 0], [0, 0], frame_rate=2.0, duration=5.0)[-1].end == 5.0


def test_joint_bass_decoding_keeps_the_bass_in_the_chord():
    """The bass head's favourite, D, is no tone of the C:maj the chord heads are sure of: separate decisions
    give the inconsistent C:maj/2; the joint (chord, bass) Viterbi takes the chord tone E instead."""
    n = 12
    type_probs = np.full((n, 32), 0.1 / 31)
    type_probs[:, CHORD_TYPES.index("maj")] = 0.9
    root_probs = np.full((n, 12), 0.05 / 11)
    root_probs[:, 0] = 0.95
    bass_probs = np.full((n, 12), 0.02)
    bass_probs[:, 2], bass_probs[:, 4] = 0.6, 0.2  # D, then E
    separate = decode_frames(type_probs, root_probs, bass_probs, DecodeConfig(joint_bass=False))
    joint = decode_frames(type_probs, root_probs, bass_probs, DecodeConfig(joint_bass=True))
    assert {s.label for s in frames_to_segments(*separate, frame_rate=10.0)} == {"C:maj/2"}
    assert {s.label for s in frames_to_segments(*joint, frame_rate=10.0)} == {"C:maj/3"}


def test_the_bass_head_chooses_the_bass_among_a_chords_tones_not_the_chord():
    """The joint emission is p(chord) * p(bass | bass is a tone of the chord): the bass head renormalised
    over each chord's tones, so a strong bass note does not favour the chords that contain it. The chord heads
    are even between C:maj and G:maj, and the bass head hears E (a tone of C:maj only), with a little C and G:
    C:maj over its E holds 0.9 of C:maj's bass mass, G:maj over its G all of G:maj's, and G:maj wins.
    (Weighing by the bass posterior itself would give C:maj/3; `benchmarks/chords_rounds.md`, seventh round,
    measured that and kept this.) A root head leaning to C by 0.55 to 0.45 outweighs the difference."""
    frames = 30
    type_p = np.full((frames, len(CHORD_TYPES)), 1e-6)
    type_p[:, CHORD_TYPES.index("maj")] = 1.0
    root_p = np.full((frames, 12), 1e-6)
    root_p[:, 0] = root_p[:, 7] = 0.5
    bass_p = np.full((frames, 12), 1e-6)
    bass_p[:, 4], bass_p[:, 0], bass_p[:, 7] = 0.9, 0.05, 0.05
    for config in (DecodeConfig(), DecodeConfig(bass_onset_frames=0.0)):
        assert [s.label for s in decode_posteriors(type_p, root_p, bass_p, 10.0, config)] == ["G:maj"]
    root_p[:, 0], root_p[:, 7] = 0.55, 0.45
    assert [s.label for s in decode_posteriors(type_p, root_p, bass_p, 10.0, DecodeConfig())] == ["C:maj/3"]


def test_joint_bass_decoding_matches_separate_chords_on_root_position_songs(rng):
    """On clear root-position chords the joint decoder finds the same chords, and every bass it outputs
    is a tone of its chord, also on noisy posteriors."""
    labels = ["N"] * 4 + ["C:maj"] * 10 + ["G:7/3"] * 8 + ["A:min"] * 10 + ["F:maj7"] * 6
    posteriors = _posteriors(labels, rng, sharpness=6.0, noise=0.5)
    joint = decode_frames(*posteriors, config=DecodeConfig())
    separate = decode_frames(*posteriors, config=DecodeConfig(joint_bass=False))
    np.testing.assert_array_equal(joint[0], separate[0])
    assert [s.label for s in frames_to_segments(*joint, 10.0)] == ["N", "C:maj", "G:7/3", "A:min", "F:maj7"]
    noisy = _posteriors(labels, rng, sharpness=0.5, noise=2.0)
    chord_type, root, bass = decode_frames(*noisy, config=DecodeConfig())
    for t, r, b in zip(chord_type, root, bass):
        if t >= 2:
            assert (b - r) % 12 in TYPE_INTERVALS[CHORD_TYPES[t]]


@pytest.mark.parametrize("joint_bass", [True, False])
def test_a_joint_chord_head_keeps_type_and_root_together(joint_bass):
    """E G B over C is C:maj7 or E:min. The type head leans to min and the root head to E, each
    marginalising over the other, so their product picks E:min; the joint chord head, which holds the two
    readings apart, picks C:maj7 (0.5 against 0.45). Its weight 0 falls back to the separate heads. The bass
    is G, a tone of both."""
    n = 10
    type_probs = np.full((n, 32), 0.02 / 30)
    type_probs[:, CHORD_TYPES.index("maj7")], type_probs[:, CHORD_TYPES.index("min")] = 0.45, 0.53
    root_probs = np.full((n, 12), 0.02 / 10)
    root_probs[:, 0], root_probs[:, 4] = 0.45, 0.53
    bass_probs = np.full((n, 12), 0.1 / 11)
    bass_probs[:, 7] = 0.9
    chord_probs = np.full((n, 362), 0.05 / 360)
    chord_probs[:, 2 + (CHORD_TYPES.index("maj7") - 2) * 12 + 0] = 0.5
    chord_probs[:, 2 + (CHORD_TYPES.index("min") - 2) * 12 + 4] = 0.45

    def labels(weight):
        config = DecodeConfig(joint_bass=joint_bass, chord_head_weight=weight)
        frames = decode_frames(type_probs, root_probs, bass_probs, config, chord_probs=chord_probs)
        return {s.label for s in frames_to_segments(*frames, frame_rate=10.0)}

    assert labels(1.0) == {"C:maj7/5"}
    assert labels(0.0) == {"E:min/b3"}
    # In between, the weight is the joint head's share: C:maj7 leads it by log(0.5 / 0.45) = 0.11 and trails
    # the separate heads by 2 log(0.53 / 0.45) = 0.33, so it wins above a weight of 0.76.
    assert labels(0.9) == {"C:maj7/5"}
    assert labels(0.6) == {"E:min/b3"}
    without_head = decode_frames(type_probs, root_probs, bass_probs, DecodeConfig(joint_bass=joint_bass))
    assert {s.label for s in frames_to_segments(*without_head, frame_rate=10.0)} == {"E:min/b3"}
    with pytest.raises(ValueError, match="chord_probs must be"):
        decode_frames(type_probs, root_probs, bass_probs, chord_probs=chord_probs[:, :100])
    with pytest.raises(ValueError, match="chord_head_weight"):
        DecodeConfig(chord_head_weight=1.5)


def test_chord_changes_are_placed_where_the_two_chords_cross_between_frames():
    """C:maj fading into F#:maj (no common tone), the log-odds crossing zero 30% of the way from frame 9 to
    frame 10: the boundary is at 0.93 s (frame 9 is centred at 0.9 s at 10 frames per second), not halfway."""
    frames = 20
    log_odds = np.where(np.arange(frames) <= 9, 3.0, -7.0)  # log p(C) - log p(F#) per frame: crosses at 9.3
    p_c = 1.0 / (1.0 + np.exp(-log_odds))
    type_p = np.full((frames, len(CHORD_TYPES)), 1e-9)
    type_p[:, CHORD_TYPES.index("maj")] = 1.0
    root_p = np.full((frames, 12), 1e-9)
    root_p[:, 0], root_p[:, 6] = p_c, 1.0 - p_c
    bass_p = root_p.copy()  # each chord's bass term is then ~0: its root is nearly all of its tones' mass
    for joint_bass in (True, False):
        config = DecodeConfig(joint_bass=joint_bass, chord_head_weight=0.0)
        segments = decode_posteriors(type_p, root_p, bass_p, 10.0, config)
        assert [s.label for s in segments] == ["C:maj", "F#:maj"]
        assert segments[1].start == pytest.approx(0.93, abs=1e-6)
        assert segments[0].end == segments[1].start
    halfway = decode_posteriors(type_p, root_p, bass_p, 10.0, DecodeConfig(refine_boundaries=False))
    assert halfway[1].start == pytest.approx(0.95)
    # Median and argmax decoding keep the boundary halfway and say so.
    for method in ("median", "argmax"):
        *_, offsets = decode_frames_and_offsets(type_p, root_p, bass_p, DecodeConfig(method=method))
        assert not offsets.any()


def test_boundary_offsets_stay_inside_their_frames_and_halfway_against_the_frames():
    log_emissions = np.log(np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.999999, 1e-6]]))
    states = np.array([0, 0, 1, 0, 1])
    offsets = boundary_offsets(log_emissions, states)
    d = np.log(0.8 / 0.2), np.log(0.3 / 0.7)
    assert offsets[0] == offsets[1] == 0.0
    assert offsets[2] == pytest.approx(d[0] / (d[0] - d[1]) - 0.5)
    # 1 -> 0 at frame 3: frame 2 favours 1, frame 3 favours 0: a crossing again.
    assert -0.5 < offsets[3] < 0.5 and offsets[3] != 0.0
    # 0 -> 1 at frame 4, but frame 4 favours 0 overwhelmingly: the prior made that change; halfway.
    assert offsets[4] == 0.0
    # A one-frame run between two refined changes keeps a positive length, however close the crossings.
    steep = np.log(np.array([[1 - 1e-12, 1e-12], [1e-12, 1 - 1e-12], [1 - 1e-12, 1e-12]]))
    offsets = boundary_offsets(steep, np.array([0, 1, 0]))
    segments = frames_to_segments([2, 3, 2], [0, 9, 0], [0, 9, 0], 10.0, boundary_offsets=offsets)
    assert [s.label for s in segments] == ["C:maj", "A:min", "C:maj"]
    assert all(s.end > s.start for s in segments)


def test_a_chords_bass_is_the_one_played_as_it_starts_not_the_walking_line_after():
    """C:maj for 20 frames over a bass that plays C for three frames and then mostly E: the Viterbi path
    keeps one (chord, bass) state and, weighing every frame alike, calls it C:maj/3; the bass chosen at the
    chord's onset says C:maj."""
    frames = 20
    type_p = np.full((frames, len(CHORD_TYPES)), 1e-6)
    type_p[:, CHORD_TYPES.index("maj")] = 1.0
    root_p = np.full((frames, 12), 1e-6)
    root_p[:, 0] = 1.0
    bass_p = np.full((frames, 12), 0.01)
    bass_p[:3, 0], bass_p[:3, 4] = 0.9, 0.05
    bass_p[3:, 0], bass_p[3:, 4] = 0.3, 0.55
    every_frame = DecodeConfig(bass_onset_frames=0.0)
    assert [s.label for s in decode_posteriors(type_p, root_p, bass_p, 10.0, every_frame)] == ["C:maj/3"]
    assert [s.label for s in decode_posteriors(type_p, root_p, bass_p, 10.0, DecodeConfig())] == ["C:maj"]
    # A bass that stays on E from the start is kept.
    bass_p[:3, 0], bass_p[:3, 4] = 0.05, 0.9
    assert [s.label for s in decode_posteriors(type_p, root_p, bass_p, 10.0, DecodeConfig())] == ["C:maj/3"]
    with pytest.raises(ValueError, match="bass_onset_frames must be finite and >= 0"):
        DecodeConfig(bass_onset_frames=-1.0)


def test_onset_bass_chooses_among_each_runs_chord_tones_and_leaves_no_chord_alone():
    n_index, maj = CHORD_TYPES.index("N"), CHORD_TYPES.index("maj")
    chord_type = np.array([n_index, maj, maj, maj, maj, n_index])
    root = np.array([-1, 0, 0, 7, 7, -1])
    bass = np.array([-1, 0, 0, 7, 7, -1])
    bass_p = np.full((6, 12), 0.01)
    bass_p[1:3, 1] = 0.9  # C#: not a tone of C:maj, never chosen; E next best
    bass_p[1:3, 4] = 0.5
    bass_p[3:5, 2] = 0.8  # D: the fifth of G:maj
    got = onset_bass(chord_type, root, bass, bass_p, 6.0)
    assert got.tolist() == [-1, 4, 4, 2, 2, -1]


def test_onset_bass_weighs_the_runs_first_frames_not_its_first_frame_alone():
    """A one-frame blip of E as C:maj starts does not set the bass of the whole chord; with a time constant
    far under a frame, the first frame does."""
    maj = CHORD_TYPES.index("maj")
    bass_p = np.zeros((6, 12))
    bass_p[0, 4], bass_p[0, 0] = 0.55, 0.45
    bass_p[1:, 0], bass_p[1:, 4] = 0.9, 0.1
    chord_type, root = np.full(6, maj), np.zeros(6, dtype=int)
    assert onset_bass(chord_type, root, root, bass_p, 6.0).tolist() == [0] * 6
    assert onset_bass(chord_type, root, root, bass_p, 0.1).tolist() == [4] * 6


@pytest.mark.parametrize("method", ["viterbi", "median", "argmax"])
def test_frames_far_below_the_songs_level_are_no_chord(rng, method):
    # C:maj rings on after its notes stop, 20 dB down: the heads still hear C:maj there.
    labels = ["C:maj"] * 30 + ["G:maj"] * 30
    type_p, root_p, bass_p = _posteriors(labels, rng, sharpness=6.0, noise=0.3)
    level = np.full(60, -20.0)
    level[50:] = -40.0
    config = DecodeConfig(method=method)
    segments = decode_posteriors(type_p, root_p, bass_p, 10.0, config, level_db=level)
    assert [s.label for s in segments] == ["C:maj", "G:maj", "N"]
    assert segments[-1].start == pytest.approx(4.95, abs=0.051)
    # Without levels, or with the gate off, or with a drop smaller than silence_db: the heads decide.
    for kwargs in ({}, {"level_db": np.where(level < -30, -30.0, level)}):
        assert [s.label for s in decode_posteriors(type_p, root_p, bass_p, 10.0, config, **kwargs)] == [
            "C:maj",
            "G:maj",
        ]
    off = replace(config, silence_db=0.0)
    assert [s.label for s in decode_posteriors(type_p, root_p, bass_p, 10.0, off, level_db=level)] == [
        "C:maj",
        "G:maj",
    ]


def test_frames_far_below_the_songs_level_are_no_chord_with_a_joint_chord_head(rng):
    """The default model decodes from its joint chord head alone: its chord ringing on 20 dB down is N too."""
    labels = ["C:maj"] * 30 + ["G:maj"] * 30
    type_p, root_p, bass_p = _posteriors(labels, rng, sharpness=6.0, noise=0.3)
    chord_p = _chord_head(labels, rng, sharpness=6.0, noise=0.3)
    level = np.full(60, -20.0)
    level[50:] = -40.0
    for joint_bass in (True, False):
        config = DecodeConfig(joint_bass=joint_bass)
        segments = decode_posteriors(
            type_p, root_p, bass_p, 10.0, config, chord_probs=chord_p, level_db=level
        )
        assert [s.label for s in segments] == ["C:maj", "G:maj", "N"]
        assert segments[-1].start == pytest.approx(4.95, abs=0.051)


def test_quiet_frames_follow_the_songs_median_not_its_loudest_frame():
    # A loud hit does not make the song's playing frames quiet; a fade is N only once it is far enough down.
    level = np.concatenate([np.full(40, -20.0), [0.0], np.linspace(-20.0, -50.0, 31)])
    quiet = quiet_frames(level, 15.0)
    assert not quiet[:41].any()
    assert quiet[41:].sum() == np.sum(np.linspace(-20.0, -50.0, 31) < -35.0)
    assert not quiet_frames(level, 0.0).any()
    assert quiet_frames(np.zeros(0), 15.0).shape == (0,)
    # Nor does a click 50 dB over the music: the loud frames are the 99th percentile, not the loudest one.
    clicked = np.full(400, -20.0)
    clicked[200] = 30.0
    assert not quiet_frames(clicked, 15.0).any()


def test_a_noise_floor_longer_than_the_music_is_quiet_not_the_playing_level(rng):
    """Chords were written over 124 s of the 150 s of -60 dBFS hiss after 120 s of music: with most frames at
    the floor, the song's median was the floor, so no frame was quieter than it by 15 dB. The playing level is
    the median of the frames that sound (within 30 dB of the loud ones)."""
    music = -20.0 + rng.normal(0.0, 3.0, 400)
    hiss = -60.0 + rng.normal(0.0, 0.5, 600)
    for level in (
        np.concatenate([music, hiss]),
        np.concatenate([hiss, music]),
        np.concatenate([hiss[:300], music, hiss[300:]]),
    ):
        quiet = quiet_frames(level, 15.0)
        assert quiet[level < -50.0].all()
        assert not quiet[level > -30.0].any()
        assert playing_level_db(level) == pytest.approx(np.median(music), abs=0.5)
    # A song that sounds throughout keeps its median frame as its playing level (the gate is as before).
    assert playing_level_db(music) == np.median(music)


def test_levels_must_match_the_frames_and_silence_db_be_valid(rng):
    type_p, root_p, bass_p = _posteriors(["C:maj"] * 5, rng)
    with pytest.raises(ValueError, match=r"level_db must be \[5\], got \(4,\)"):
        decode_frames(type_p, root_p, bass_p, level_db=np.zeros(4))
    for bad in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="silence_db must be (finite and >= 0|a finite number)"):
            DecodeConfig(silence_db=bad)


def test_non_finite_posteriors_and_bad_times_are_refused_by_name():
    from audiotrain.chords.decode import decode_posteriors

    frames = 20
    type_probs = np.full((frames, len(CHORD_TYPES)), 1.0 / len(CHORD_TYPES))
    root = np.full((frames, 12), 1 / 12)
    with pytest.raises(ValueError, match=r"type_probs holds \d+ non-finite values"):
        decode_posteriors(np.full_like(type_probs, np.nan), root, root, 10.0)  # it decoded to X and chords
    for kwargs, match in (
        ({"duration": 0.0}, "duration must be"),
        ({"duration": -1.0}, "duration must be"),
        ({"duration": float("inf")}, "duration must be"),
    ):
        with pytest.raises(ValueError, match=match):
            decode_posteriors(type_probs, root, root, 10.0, **kwargs)
    for frame_rate in (0.0, -1.0, float("inf")):  # inf: every segment would start at 0 s
        with pytest.raises(ValueError, match="frame_rate must be"):
            decode_posteriors(type_probs, root, root, frame_rate)


def test_joint_decoding_holds_little_more_than_its_emissions():
    """The joint Viterbi's emissions are [frames, 1,574] float64 (8 MB per minute of audio); a long recording
    decoded with the whole-song expression, and 8-byte back pointers, held about 3.6 times that at once."""
    rng = np.random.default_rng(0)
    frames = 3000

    def posteriors(classes):
        p = rng.random((frames, classes)) ** 4
        return p / p.sum(axis=1, keepdims=True)

    heads = posteriors(32), posteriors(12), posteriors(12), posteriors(362)
    tracemalloc.start()
    try:
        decode_posteriors(*heads[:3], 10.8, DecodeConfig(), chord_probs=heads[3])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    emissions = frames * 1574 * 8
    assert peak < 2.5 * emissions, f"peak {peak / emissions:.2f} times the emissions"


def test_joint_decoding_of_a_long_recording_never_holds_its_emissions_whole():
    """An hour's recording (38,760 frames) held its joint emissions whole, 490 MB of float64, through the
    Viterbi pass: `predict` of it peaked at 1.1 GB. They are made a few hundred frames at a time, as the pass
    and the boundaries read them: and what is left (the 2-byte back pointers and the
    heads' [frames, 362] log-probabilities) well under the emissions' size and a half."""
    rng = np.random.default_rng(1)
    frames = 3000

    def posteriors(classes):
        p = rng.random((frames, classes)) ** 4
        p[:, 2] += np.repeat(rng.random(frames // 30), 30) * 50  # chords that last: changes to refine
        return p / p.sum(axis=1, keepdims=True)

    heads = posteriors(32), posteriors(12), posteriors(12), posteriors(362)
    tracemalloc.start()
    try:
        segments = decode_posteriors(*heads[:3], 10.8, DecodeConfig(), chord_probs=heads[3])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    emissions = frames * 1574 * 8
    assert len(segments) > 1  # (changes whose boundaries are refined: their frames' emissions are read)
    assert peak < 1.8 * emissions, f"peak {peak / emissions:.2f} times the emissions"


@pytest.mark.parametrize("refine_boundaries", [True, False])
def test_separate_bass_path_writes_no_sliver_of_the_old_chord_over_the_new_bass(refine_boundaries):
    """C for 10 frames, then F; the bass heard F a frame before the chords tipped. The separate bass path
    changed a frame early and wrote C:maj/4 for that frame (with refined boundaries, for less than one:
    the chord's boundary moved within its frame gap, the bass's stayed halfway). Now the bass change lands
    on the chord change, as in the joint path."""
    n, frame_rate = 20, 10.0
    type_probs = np.full((n, 32), 1e-4)
    type_probs[:, CHORD_TYPES.index("maj")] = 1.0
    root_probs = np.full((n, 12), 1e-4)
    root_probs[:10, 0], root_probs[10:, 5] = 1.0, 1.0  # C, then F
    root_probs[9, 0], root_probs[9, 5] = 0.6, 0.4  # the last C frame already hears some F
    bass_probs = np.full((n, 12), 1e-4)
    bass_probs[:9, 0], bass_probs[9:, 5] = 1.0, 1.0  # the bass moves to F a frame early
    config = DecodeConfig(joint_bass=False, refine_boundaries=refine_boundaries)
    segments = decode_posteriors(type_probs, root_probs, bass_probs, frame_rate, config, duration=2.0)
    assert [s.label for s in segments] == ["C:maj", "F:maj"], segments
    assert all(s.duration >= 1 / frame_rate for s in segments)
    # The same a frame late, and a bass change away from any chord change stays where the bass path put it.
    bass_probs = np.full((n, 12), 1e-4)
    bass_probs[:11, 0], bass_probs[11:15, 5], bass_probs[15:, 9] = 1.0, 1.0, 1.0
    segments = decode_posteriors(type_probs, root_probs, bass_probs, frame_rate, config, duration=2.0)
    assert [s.label for s in segments] == ["C:maj", "F:maj", "F:maj/3"], segments
    assert segments[2].start == pytest.approx(14.5 / frame_rate)


@pytest.mark.parametrize("joint_bass", [True, False])
def test_the_self_transition_setting_decides_whether_a_short_chord_stays(rng, joint_bass):
    """Two frames of G:maj inside C:maj: a self-transition of 0.5 keeps them, one of 0.99999 smooths them
    away; both Viterbi paths (the joint one and the separate chord path) could have used 0.95 whatever was
    set."""
    labels = ["C:maj"] * 14 + ["G:maj"] * 2 + ["C:maj"] * 14
    posteriors = _posteriors(labels, rng, sharpness=8.0, noise=0.0)

    def decoded(self_transition):
        config = DecodeConfig(joint_bass=joint_bass, self_transition=self_transition)
        return [s.label for s in decode_posteriors(*posteriors, 10.0, config)]

    assert decoded(0.5) == ["C:maj", "G:maj", "C:maj"]
    assert decoded(0.99999) == ["C:maj"]
    for never_or_always in (0.0, 1.0):  # log 0: no chord change at all, or a change every frame
        with pytest.raises(ValueError, match=r"self_transition must be in \(0, 1\)"):
            DecodeConfig(self_transition=never_or_always)


@pytest.mark.parametrize("head", ["root_probs", "bass_probs", "chord_probs"])
def test_non_finite_values_in_any_head_are_refused_by_its_name(rng, head):
    """A diverged model's NaN root, bass or joint chord head would decode to arbitrary chords as surely as a
    NaN type head; only the type head's refusal was tested."""
    type_p, root_p, bass_p = _posteriors(["C:maj"] * 5, rng)
    heads = {"root_probs": root_p, "bass_probs": bass_p, "chord_probs": _chord_head(["C:maj"] * 5, rng)}
    heads[head][2, 0] = np.nan
    with pytest.raises(ValueError, match=f"^{head} holds 1 non-finite values"):
        decode_posteriors(
            type_p, heads["root_probs"], heads["bass_probs"], 10.0, chord_probs=heads["chord_probs"]
        )


def test_root_and_bass_posteriors_of_another_shape_are_refused_by_name(rng):
    type_p, root_p, bass_p = _posteriors(["C:maj"] * 5, rng)
    with pytest.raises(ValueError, match=r"^root_probs must be \[5, 12\], got \(5, 13\)"):
        decode_frames(type_p, np.full((5, 13), 1 / 13), bass_p)
    with pytest.raises(ValueError, match=r"^bass_probs must be \[5, 12\], got \(5, 11\)"):
        decode_frames(type_p, root_p, np.full((5, 11), 1 / 11))


@pytest.mark.parametrize("joint_bass", [True, False])
def test_without_a_bass_head_each_chord_is_in_root_position(rng, joint_bass):
    type_p, root_p, _ = _posteriors(["G:maj"] * 6 + ["A:min"] * 6, rng, sharpness=8.0, noise=0.0)
    config = DecodeConfig(joint_bass=joint_bass)
    assert [s.label for s in decode_posteriors(type_p, root_p, None, 10.0, config)] == ["G:maj", "A:min"]


def test_the_bass_onset_time_constant_is_the_one_set(rng):
    """A blip of E on C:maj's first frame: the default 6 frames weigh it against the C after it; a time
    constant far under a frame takes the first frame's bass."""
    type_p, root_p, _ = _posteriors(["C:maj"] * 6, rng, sharpness=8.0, noise=0.0)
    bass_p = np.full((6, 12), 1e-4)
    bass_p[0, 4], bass_p[0, 0] = 0.55, 0.45
    bass_p[1:, 0], bass_p[1:, 4] = 0.9, 0.1
    for onset_frames, label in ((6.0, "C:maj"), (0.1, "C:maj/3")):
        config = DecodeConfig(bass_onset_frames=onset_frames)
        assert [s.label for s in decode_posteriors(type_p, root_p, bass_p, 10.0, config)] == [label]


def test_a_change_of_bass_under_one_chord_keeps_both_basses(rng):
    """The joint path's C:maj over C, then over E: the onset bass is chosen per (chord, bass) run, not once
    for the chord, which would have made the whole run C:maj."""
    posteriors = _posteriors(["C:maj"] * 10 + ["C:maj/3"] * 10, rng, sharpness=10.0, noise=0.0)
    assert [s.label for s in decode_posteriors(*posteriors, 10.0)] == ["C:maj", "C:maj/3"]


@pytest.mark.parametrize("frames", [0, 1, 513])
def test_songs_of_any_length_decode_every_frame(rng, frames):
    """The joint emissions are filled 512 frames at a time: a song of one frame, or one more than a block,
    has its last frame in a block of its own. A song of no frames has no segments."""
    posteriors = _posteriors(["A:maj"] * frames, rng, sharpness=10.0, noise=0.0)
    expected = ["A:maj"] if frames else []
    assert [s.label for s in decode_posteriors(*posteriors, 10.0)] == expected


def test_no_chord_wins_a_near_tie_on_its_own_probability(rng):
    """The joint path's N state is scored by p(N) alone, as a chord by p(type) p(root) summed over its
    basses: N at 0.5 against C:maj at 0.45 is N."""
    type_p, root_p, bass_p = _posteriors(["C:maj"] * 10, rng, sharpness=10.0, noise=0.0)
    type_p[:] = 1e-4
    type_p[:, N_INDEX], type_p[:, CHORD_TYPES.index("maj")] = 0.5, 0.45
    assert [s.label for s in decode_posteriors(type_p, root_p, bass_p, 10.0)] == ["N"]


def test_a_bass_head_with_exact_zeros_on_a_chords_tones_still_decodes_the_chord(rng):
    """A float32 softmax underflows to 0: here every tone of C:maj has bass probability 0 (the head hears
    C#). log 0 - log 0 made the chord's emissions NaN."""
    type_p, root_p, _ = _posteriors(["C:maj"] * 10, rng, sharpness=10.0, noise=0.0)
    bass_p = np.zeros((10, 12))
    bass_p[:, 1] = 1.0
    assert [s.label for s in decode_posteriors(type_p, root_p, bass_p, 10.0)] == ["C:maj"]


@pytest.mark.parametrize("method", ["median", "argmax"])
def test_unknown_chord_frames_have_no_root_or_bass(rng, method):
    posteriors = _posteriors(["X"] * 5, rng, sharpness=10.0, noise=0.0)
    posteriors[1][:, 3] = posteriors[2][:, 3] = 1.0  # the root and bass heads still name D#
    chord_type, root, bass = decode_frames(*posteriors, DecodeConfig(method=method, unknown_chords=True))
    assert chord_type.tolist() == [X_INDEX] * 5
    assert root.tolist() == bass.tolist() == [-1] * 5


@pytest.mark.parametrize("method", ["viterbi", "median", "argmax"])
def test_log_posteriors_are_refused_and_named_not_decoded_as_a_song_of_n(rng, method):
    """An ensemble that averages its models' log-probabilities (a geometric mean) and decodes them gave one
    N segment for the whole song under viterbi, with no message: decoding reads probabilities."""
    labels = ["C:maj"] * 5 + ["G:maj"] * 5
    type_p, root_p, bass_p = _posteriors(labels, rng)
    assert [s.label for s in decode_posteriors(type_p, root_p, bass_p, 10.0)] == ["C:maj", "G:maj"]
    config = DecodeConfig(method=method)
    with pytest.raises(ValueError, match=r"^type_probs holds 320 negative values .*np\.exp"):
        decode_posteriors(np.log(type_p), root_p, bass_p, 10.0, config)
    with pytest.raises(ValueError, match=r"^root_probs holds 120 negative values .*log-probabilities"):
        decode_posteriors(type_p, np.log(root_p), bass_p, 10.0, config)
