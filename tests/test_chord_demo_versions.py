"""Each demo style's output is pinned to its generator version.

Cached demo sets are found by their generator version (the folder name and the manifest hold it), not by
their content: a change to a generator that keeps its version would leave every cache of the old songs in
place, and training would silently read them. So each style's score (notes, labels and per-song draws) and
sound are pinned here with the version they belong to: a change to either fails this test until the version
is bumped and the fingerprint below renewed.
"""

import hashlib
import json

from audiotrain.datasets.chord_demo import (
    STYLES,
    DemoConfig,
    generator_version,
    plan_demo_song,
    render_demo_song,
)

import numpy as np
import pytest

SR = 22050

#: style: (generator version, hash of the scores of songs 0-23, the sound of song 0: RMS of each 0.5 s and
#: the share of its spectrum's energy below 100 Hz, 100-400 Hz, 400 Hz-1.6 kHz and above). Renew with
#: ``python -c "from tests.test_chord_demo_versions import fingerprint; print(fingerprint('STYLE'))"``
#: after bumping the style's version.
PINNED = {
    "train": (
        9,
        "49f236697325bd9b",
        [
            0.00670279,
            0.00669172,
            0.211145,
            0.212377,
            0.122652,
            0.128234,
            0.142774,
            0.120331,
            0.140074,
            0.0351118,
            0.00635337,
            0.00697939,
            0.399769,
            0.486502,
            0.0995933,
            0.0141362,
        ],
    ),
    "independent": (
        5,
        "3219a4155d7fb3ae",
        [
            0.00195357,
            0.0018095,
            0.00182202,
            0.00184151,
            0.00514911,
            0.00492292,
            0.00499534,
            0.00530643,
            0.165774,
            0.1545,
            0.00885286,
            0.00195581,
            0.0212437,
            0.133913,
            0.409539,
            0.435305,
        ],
    ),
    "studio": (
        1,
        "ce7660eb48c52183",
        [
            0.000932053,
            0.000909169,
            0.219271,
            0.191681,
            0.21573,
            0.199708,
            0.129945,
            0.0875093,
            0.0426689,
            0.00341793,
            0.00112963,
            0.258487,
            0.649784,
            0.0273085,
            0.0644206,
        ],
    ),
    "patches": (
        1,
        "bf98e3d228ab40c3",
        [
            0.00349095,
            0.00346501,
            0.194365,
            0.207424,
            0.213148,
            0.246845,
            0.193154,
            0.251408,
            0.210348,
            0.194073,
            0.148911,
            0.0579586,
            0.617308,
            0.307452,
            0.0403609,
            0.0348788,
        ],
    ),
    "band": (
        1,
        "5e495f010b70a1fb",
        [
            0.00065771,
            0.181902,
            0.185804,
            0.185895,
            0.16383,
            0.197416,
            0.177216,
            0.163246,
            0.148122,
            0.0255422,
            0.000691375,
            0.000672835,
            0.16002,
            0.500325,
            0.325653,
            0.0140024,
        ],
    ),
}


def _rounded(value):
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    return value


def fingerprint(style: str) -> tuple[int, str, list[float]]:
    """(version, score hash, sound) of `style`'s songs 0-23 at seed 5 (6 s each; see `PINNED`): enough songs
    that a change to a share of them (one in ten songs, or of their chords) shows."""
    config = DemoConfig(n_songs=24, seed=5, song_seconds=6.0, style=style)
    scores = []
    for index in range(config.n_songs):
        song = plan_demo_song(config, index)
        fields = {k: v for k, v in vars(song).items() if k not in ("segments", "notes")}
        scores.append(
            {
                "segments": [(s.start, s.end, s.label) for s in song.segments],
                "notes": [(n.onset, n.offset, n.midi, n.velocity, n.instrument) for n in song.notes],
                **fields,
            }
        )
    text = json.dumps(_rounded(scores), sort_keys=True, default=str)
    audio = render_demo_song(plan_demo_song(config, 0), SR, seed=[config.seed, 0]).astype(np.float64)
    half = SR // 2
    rms = [float(np.sqrt(np.mean(audio[i : i + half] ** 2))) for i in range(0, len(audio) - half + 1, half)]
    power = np.abs(np.fft.rfft(audio)) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / SR)
    edges = [0, 100, 400, 1600, SR]
    bands = [
        float(power[(freqs >= lo) & (freqs < hi)].sum() / power.sum()) for lo, hi in zip(edges, edges[1:])
    ]
    return generator_version(style), hashlib.sha256(text.encode()).hexdigest()[:16], rms + bands


@pytest.mark.parametrize("style", STYLES)
def test_a_changed_generator_has_a_new_version(style):
    version, plan, sound = fingerprint(style)
    pinned_version, pinned_plan, pinned_sound = PINNED[style]
    renew = "and renew its fingerprint in tests/test_chord_demo_versions.py"
    if version != pinned_version:
        pytest.fail(
            f"the {style} generator is now version {version} (pinned: {pinned_version}): renew its "
            "fingerprint in tests/test_chord_demo_versions.py"
        )
    assert plan == pinned_plan, (
        f"the {style} style's scores changed but its generator version is still {version}: bump the version "
        f"(cached demo sets are found by it) {renew}"
    )
    # Rendering runs float32 maths whose last bits may differ between machines; a change of the sound is far
    # larger than that.
    np.testing.assert_allclose(
        sound,
        pinned_sound,
        rtol=2e-3,
        atol=1e-5,
        err_msg=f"the {style} style's sound changed but its generator version is still {version}: bump it "
        + renew,
    )
