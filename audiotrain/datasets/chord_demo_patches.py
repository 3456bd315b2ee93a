"""The ``"patches"`` demo style: domain randomisation of timbre, an extra source of training data.

A chord model trained on a few instruments learns their sounds along with the chords. In this style every
instrument of every song is a randomly drawn synthesizer patch (`chord_demo_patches_sound`: additive, FM,
subtractive, supersaw, plucked, organ and pad families for the chords; sub, picked, filtered and fretless
basses), each with its own spectrum, envelope, modulation and level, so that a model trained partly on these
songs hears chords in sounds it was not trained on. Written without looking at the held-out
``"independent"`` style.

The scores are not new: each song is planned by the studio planner or the train planner (drawn per song), on
another seed than those styles' own sets (``seed + 104729``), so song ``i`` is another score than studio or
train song ``i`` of the same seed. Its labels, notes, tempo and tuning offset (+-40 or +-45 cents) are the
planner's, so the label rules of `audiotrain.datasets.chord_demo` (its docstring) hold as they do for those
styles: within a chord segment the chord instruments play only the chord's pitch classes (a chord of four or
more notes may lose its perfect fifth, and over a bass instrument playing the root its root too); the labelled
bass is never left out and is the lowest note (the bass instrument's, or without one every chord
instrument's); every note ends before its segment does. The sound keeps them true: every patch plays only its
note's harmonic series (nothing below the fundamental, no inharmonic partials, detuned voices within 10
cents of the note) with the fundamental kept strong, every partial under the Nyquist frequency, and notes do
not ring past their ends (see `chord_demo_patches_sound`).

What the song draws is in ``DemoSong.details``: the planner (``"planner"``), its genre for studio scores,
``"patches"`` (instrument name -> patch), the drum pattern and swing, and the mix (the studio style's, without
saturation or hum). Of `DemoConfig`'s fields it uses `seed`, `song_seconds`, `timbres` (the chord patch
families to draw from), `noise_db` and `percussion`, and the train planner the rest of them.
"""

from __future__ import annotations

from dataclasses import replace

from audiotrain.datasets.chord_demo import DemoConfig, DemoSong, is_bass_instrument, plan_demo_song
from audiotrain.datasets.chord_demo_patches_sound import BASS_FAMILIES, CHORD_FAMILIES, draw_patch
from audiotrain.datasets.chord_demo_studio import plan_studio_song
from audiotrain.datasets.chord_demo_studio_sound import DRUM_PATTERNS, mix_settings

import numpy as np

PATCHES_VERSION = 1  # bump whenever the output changes: cached sets are then regenerated
TIMBRES = CHORD_FAMILIES
PLANNERS = ("studio", "train")
#: Added to the seed of the set for its planner: a prime, so patches song i is not studio/train song i.
SCORE_SEED_OFFSET = 104729
_STREAM = 0x9A7C4E5  # keeps this style's draws apart from every other generator's of the same seed and index


def plan_patches_song(config: DemoConfig, index: int) -> DemoSong:
    """The score of song ``index`` of a patches-style set (a pure function of the config and the index): a
    studio or train score with a random patch for each of its instruments."""
    rng = np.random.default_rng([config.seed, index, PATCHES_VERSION, _STREAM])
    planner = str(rng.choice(PLANNERS))
    # timbres=None: the planner's own instruments; their names only say which notes share a patch.
    score_config = replace(config, seed=config.seed + SCORE_SEED_OFFSET, style=planner, timbres=None)
    song = (
        plan_studio_song(score_config, index)
        if planner == "studio"
        else plan_demo_song(score_config, index, unaccompanied_inversions=False)
    )
    instruments = sorted({note.instrument for note in song.notes})  # sorted: set order is not reproducible
    patches = {
        name: draw_patch(str(rng.choice(BASS_FAMILIES if is_bass_instrument(name) else config.timbres)), rng)
        for name in instruments
    }
    studio = song.details or {}
    mix = mix_settings(rng)
    # No tape saturation (it adds sum and difference tones of the notes, some below the bass) and no mains
    # hum (tones of no note).
    mix.update(drive=0.0, hum_hz=0.0)
    details = {
        "planner": planner,
        "genre": studio.get("genre"),
        "patches": patches,
        "drums": studio.get("drums") or str(rng.choice(DRUM_PATTERNS)),
        "swing": studio.get("swing", 0.0),
        "mix": mix,
    }
    # The train planner's own sound settings (presets, room) do not apply: the patches replace them.
    return replace(song, style="patches", details=details, additive=None, variations=None, room=None)
