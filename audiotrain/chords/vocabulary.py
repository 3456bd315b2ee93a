"""The 32-type chord vocabulary: any Harte label ↔ (chord_type, root, bass) class indices.

The chord-type head has 32 classes: ``N``, ``X`` and 30 chord qualities. Root and bass are pitch classes
(C=0 ... B=11) and are *ignored* (``IGNORE_INDEX``) on ``N`` and on an ``X`` without a root, so that their
losses can be masked head by head.

A label is mapped by its sounding pitch-class set relative to the root (the bass included, as
``mir_eval`` does):

1. exact: the set equals one of the 30 qualities (``C:maj(9)/3`` → maj(9), ``C:maj/b7`` → 7 over b7);
2. with fewer extensions: the largest subset in the vocabulary that drops some of the ninths, elevenths and
   thirteenths (`_without_extensions`) and, after a shorthand, of the degrees added to it: ``C:maj9(11)`` →
   maj9, ``C:7(b9,#11,b13)`` → 7(b9), ``C:7(#11)`` → 7, ``C:sus2(b7)`` → sus2. A subset that keeps the
   bass comes first (``C:9/b2`` → 7(b9) over b2), then one that drops fewer, then the earlier type of
   `CHORD_TYPES` (``C:7(b9,#9)`` → 7(b9));
3. where rule 1 finds no quality, a fifth omitted in the label (``*5``, ``*b5``, ``*#5``) counts as
   played before rule 2, so that a shell voicing is the chord its third and seventh name:
   ``C:maj7(*5)`` → maj7, ``C:maj(*5)`` → maj, ``C:dim(*5)`` → dim;
4. otherwise ``X`` (``C:(1,b3)``, ``C:7(*3)``), keeping the label's root and bass: the chord-type head
   learns it as the unknown chord while the root and bass heads learn the root and bass the annotator gave
   (Isophonics' omitted-third ``B:7(*3)``, whose root ``mir_eval`` scores). No chord type holds their
   notes, and the nearest (``5`` for ``B:7(*3)``) would drop a seventh that sounds.

Every label the demo generators write is an exact match (rule 1), so rules 2 and 3 change none of them
(`tests/test_chords_vocabulary.py` checks it against their reductions before rule 2 and 3 took this form).

The bass class keeps the annotated bass pitch class in every case, and `decode_label` writes it back as an
interval, so ``mir_eval`` sees the same bass.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from audiotrain.chords.harte import (
    NO_CHORD,
    PITCH_CLASS_NAMES,
    SHORTHAND_DEGREES,
    UNKNOWN_CHORD,
    HarteChord,
    HarteError,
    degree_to_semitones,
    format_harte,
    interval_name,
    note_to_pitch_class,
    parse_harte,
    semitone_count,
)

#: Class index for targets that a loss must ignore (root and bass of N, and of X without a root).
IGNORE_INDEX = -1
N_INDEX = 0
X_INDEX = 1

#: The chord-type head, in class-index order. Each name after N and X is a Harte shorthand with optional
#: degrees, written after ``root:``.
CHORD_TYPES: tuple[str, ...] = (
    "N", "X",
    "maj", "min", "dim", "aug", "sus2", "sus4", "5", "1",
    "7", "maj7", "min7", "minmaj7", "dim7", "hdim7", "maj6", "min6", "sus4(b7)",
    "9", "maj9", "min9", "11", "min11", "13", "maj13", "min13",
    "maj(9)", "min(9)", "maj6(9)", "7(b9)", "7(#9)",
)  # fmt: skip
NUM_CHORD_TYPES = len(CHORD_TYPES)
NUM_PITCH_CLASSES = 12
#: Joint chord classes (a model's joint chord head, the Viterbi's chord states): N, X, then the 12 roots of
#: each chord type, type t on root r at ``2 + (t - 2) * 12 + r``.
NUM_JOINT_CHORDS = 2 + (NUM_CHORD_TYPES - 2) * NUM_PITCH_CLASSES


def _type_chord(type_name: str, root: int = 0) -> HarteChord:
    return parse_harte(f"{PITCH_CLASS_NAMES[root]}:{type_name}")


#: Relative pitch-class set of each chord type (index 2 onwards).
TYPE_INTERVALS: dict[str, frozenset[int]] = {name: _type_chord(name).intervals for name in CHORD_TYPES[2:]}
_INTERVALS_TO_TYPE = {intervals: CHORD_TYPES.index(name) for name, intervals in TYPE_INTERVALS.items()}
assert len(_INTERVALS_TO_TYPE) == NUM_CHORD_TYPES - 2, "two chord types share a pitch-class set"


@dataclass(frozen=True)
class ChordIndex:
    """Class indices of one chord: ``chord_type`` in 0-31, ``root`` and ``bass`` in 0-11 or -1 (N, and X
    without a root)."""

    chord_type: int
    root: int
    bass: int


def _without_extensions(intervals: frozenset[int]) -> frozenset[int]:
    """Drop the pitch classes that act as 9ths, 11ths and 13ths, keeping those that define a quality.

    A semitone is an extension only in a context that makes it one: 2 is a ninth next to a third or a
    fourth (else sus2), 5 an eleventh next to a third (else sus4), 6 a sharp eleventh next to a perfect
    fifth (else a diminished fifth), 8 a flat thirteenth next to a perfect fifth (else an augmented fifth),
    9 a thirteenth next to a seventh (else a sixth), 3 a sharp ninth next to a major third.
    """
    has = intervals.__contains__
    tensions = {1}
    if has(3) or has(4) or has(5):
        tensions.add(2)
    if has(3) or has(4):
        tensions.add(5)
    if has(7):
        tensions.update((6, 8))
    if has(10) or has(11):
        tensions.add(9)
    if has(4):
        tensions.add(3)
    return frozenset(i for i in intervals if i not in tensions or i == 0)


@functools.lru_cache(maxsize=4096)
def _reduced_type(intervals: frozenset[int], shorthand: frozenset[int] | None, bass: int) -> int | None:
    """Rule 2 of the module docstring: the chord type of the best in-vocabulary subset of `intervals` that
    drops some extensions or some degrees added to `shorthand` (None: no shorthand, only extensions)."""
    droppable = (intervals - _without_extensions(intervals)) | (intervals - shorthand if shorthand else set())
    droppable -= {0}
    found = []
    for count in range(len(droppable) + 1):
        for dropped in combinations(sorted(droppable), count):
            chord_type = _INTERVALS_TO_TYPE.get(intervals.difference(dropped))
            if chord_type is not None:
                found.append((bass in dropped, count, chord_type))
    return min(found)[2] if found else None


def encode_chord(chord: HarteChord) -> ChordIndex:
    """Vocabulary indices of a parsed chord (see the module docstring for the mapping)."""
    if chord.symbol == NO_CHORD:
        return ChordIndex(N_INDEX, IGNORE_INDEX, IGNORE_INDEX)
    if chord.symbol == UNKNOWN_CHORD:
        return ChordIndex(X_INDEX, IGNORE_INDEX, IGNORE_INDEX)
    chord_type = _INTERVALS_TO_TYPE.get(chord.intervals)
    if chord_type is None:
        omitted_fifth = {degree_to_semitones(d[1:]) % 12 for d in chord.degrees if d in ("*5", "*b5", "*#5")}
        shorthand = frozenset(degree_to_semitones(d) % 12 for d in SHORTHAND_DEGREES[chord.shorthand])
        chord_type = _reduced_type(
            chord.intervals | omitted_fifth, shorthand if chord.shorthand else None, chord.bass_interval
        )
    if chord_type is None:
        chord_type = X_INDEX  # (rule 4: the root and bass heads still learn the annotated root and bass)
    return ChordIndex(chord_type, chord.root, chord.bass_pitch_class)


def encode_label(label: str) -> ChordIndex:
    """Vocabulary indices of a Harte label: ``encode_label("C:maj7/3") == ChordIndex(11, 0, 4)``.

    Raises `audiotrain.chords.harte.HarteError` for a label that is not Harte syntax.
    """
    return encode_chord(parse_harte(label))


def decode_label(chord_type: int, root: int, bass: int | None = None) -> str:
    """Harte label of vocabulary indices, parsable by ``mir_eval``.

    Parameters
    ----------
    chord_type : int
        Index into `CHORD_TYPES`.
    root : int
        Root pitch class 0-11 (ignored for N and X).
    bass : int, optional
        Bass pitch class 0-11; None, -1 or the root itself means root position.

    Raises
    ------
    ValueError
        For an index that is not a whole number (``0.5`` is no pitch class), or out of its range
        (a bass below -1 included).
    """
    return _decode_label(
        _whole(chord_type, "chord_type"), _whole(root, "root"), -1 if bass is None else _whole(bass, "bass")
    )


def _whole(value, name: str) -> int:
    """`value` as an int, refusing a number that is not whole: ``int(0.5)`` would read a root of 0.5 as C."""
    try:
        whole = int(value)
        exact = whole == value
    except (TypeError, ValueError, OverflowError):
        exact = False
    if not exact:
        raise ValueError(f"{name} must be a whole number (a vocabulary index), got {value!r}")
    return whole


@functools.lru_cache(maxsize=8192)
def _decode_label(chord_type: int, root: int, bass: int) -> str:
    if not 0 <= chord_type < NUM_CHORD_TYPES:
        raise ValueError(f"chord_type {chord_type} is outside 0..{NUM_CHORD_TYPES - 1}")
    if chord_type == N_INDEX:
        return NO_CHORD
    if chord_type == X_INDEX:
        return UNKNOWN_CHORD
    if not 0 <= root < NUM_PITCH_CLASSES:
        raise ValueError(f"root {root} is outside 0..11 for chord type {CHORD_TYPES[chord_type]!r}")
    chord = _type_chord(CHORD_TYPES[chord_type], root)
    if bass != -1:
        if not 0 <= bass < NUM_PITCH_CLASSES:
            raise ValueError(f"bass {bass} is outside 0..11 (-1 or None: root position)")
        bass_name = interval_name((bass - root) % 12, chord.shorthand, chord.degrees)
        chord = HarteChord(chord.root, chord.shorthand, chord.degrees, bass_name, chord.root_name)
    return format_harte(chord)


def transpose_index(index: ChordIndex, semitones: int) -> ChordIndex:
    """Transpose vocabulary indices by ``semitones``; ignored roots and basses stay ignored. A ``semitones``
    that is not a whole number is a ValueError naming it (no pitch class lies between two)."""
    semitones = semitone_count(semitones)
    root = index.root if index.root < 0 else (index.root + semitones) % 12
    bass = index.bass if index.bass < 0 else (index.bass + semitones) % 12
    return ChordIndex(index.chord_type, root, bass)


def _pitch_classes(chord_type: int, root: int) -> frozenset[int]:
    return frozenset((root + i) % NUM_PITCH_CLASSES for i in TYPE_INTERVALS[CHORD_TYPES[chord_type]])


@functools.lru_cache(maxsize=1)
def _chords_by_pitch_classes() -> dict[frozenset[int], tuple[tuple[int, int], ...]]:
    table: dict[frozenset[int], list[tuple[int, int]]] = {}
    for chord_type in range(2, NUM_CHORD_TYPES):
        for root in range(NUM_PITCH_CLASSES):
            table.setdefault(_pitch_classes(chord_type, root), []).append((chord_type, root))
    return {notes: tuple(chords) for notes, chords in table.items()}


def same_sounding_chords(index: ChordIndex) -> tuple[ChordIndex, ...]:
    """Every vocabulary chord with the same pitch classes and bass as ``index``, ``index`` included.

    Audio alone cannot tell these apart: ``A:min7/C`` and ``C:maj6`` sound the same notes over the same
    bass, and which label a song's annotation uses follows the chord's function, not its sound. N and X
    have no others; neither has a chord whose bass is not one of its own pitch classes.
    """
    if index.chord_type < 2:
        return (index,)
    notes = _pitch_classes(index.chord_type, index.root)
    bass = index.root if index.bass < 0 else index.bass
    if bass not in notes:
        return (index,)
    return tuple(ChordIndex(t, r, bass) for t, r in _chords_by_pitch_classes()[notes])


def reduced_label(label: str) -> str | None:
    """The chord `label` trains as where its notes are not the label's own (rules 2 and 3 of the module
    docstring): ``reduced_label("C:aug(b7)") == "C:aug"``, ``"C:7(#5)"`` → ``"C:7"``, ``"C:maj7(*5)"`` →
    ``"C:maj7"``. None where a chord type holds exactly its notes (rule 1, whatever the spelling: ``C:maj/b7``
    is C:7/b7) or holds them but for a bass outside it, which the bass class keeps (``A:min7/4``: min7 over
    D, written back as ``A:min7/4``), for N and X, and for a label that becomes X (rule 4).

    Raises `audiotrain.chords.harte.HarteError` for a label that is not Harte syntax.
    """
    chord = parse_harte(label)
    if chord.symbol in (NO_CHORD, UNKNOWN_CHORD) or chord.intervals in _INTERVALS_TO_TYPE:
        return None
    index = encode_chord(chord)
    if index.chord_type == X_INDEX:
        return None
    reduced = decode_label(index.chord_type, index.root, index.bass)
    # A bass outside its chord type (A:min7/4: min7 over D) is held by the type and bass heads together: it
    # writes back as the label's own notes, so nothing was dropped (C:maj/#4 is C:maj/b5, a spelling).
    return None if parse_harte(reduced).intervals == chord.intervals else reduced


def normalize_label(label: str) -> str:
    """The label the vocabulary represents for ``label``: ``decode_label(*encode_label(label))``."""
    index = encode_label(label)
    return decode_label(index.chord_type, index.root, index.bass)


def vocabulary_dict() -> dict[str, Any]:
    """A JSON-able description of the vocabulary, stored in checkpoints so `predict` can check it."""
    return {"name": "harte32", "chord_types": list(CHORD_TYPES), "pitch_classes": list(PITCH_CLASS_NAMES)}


def _check_pitch_classes(stored: Any) -> None:
    """Raise ValueError unless `stored` names the 12 root classes in this vocabulary's order (C=0 ... B=11),
    in any spelling: the root and bass heads' class i is pitch class i."""
    expected = f"the 12 pitch classes from C up ({', '.join(PITCH_CLASS_NAMES)})"
    if not isinstance(stored, (list, tuple)) or len(stored) != len(PITCH_CLASS_NAMES):
        count = f"{len(stored)} names" if isinstance(stored, (list, tuple)) else repr(stored)
        raise ValueError(f"the checkpoint's pitch_classes are {count}; expected {expected}")
    for index, name in enumerate(stored):
        try:
            pitch = note_to_pitch_class(name) if isinstance(name, str) else None
        except HarteError:
            pitch = None
        if pitch != index:
            raise ValueError(
                f"the checkpoint was trained with a different chord vocabulary: root class {index} is "
                f"{name!r} in the checkpoint, {PITCH_CLASS_NAMES[index]!r} in this version "
                f"(expected {expected})"
            )


def check_vocabulary_dict(stored: dict[str, Any]) -> None:
    """Raise ValueError if a checkpoint's vocabulary (from `vocabulary_dict`) differs from this one, naming
    the classes that differ. The order counts as much as the names: a model trained with the same chord types
    in another order would read each of its classes as another chord (maj as min). So does its root order:
    pitch classes counted from A read every root a minor third off; C# for Db is the same class."""
    _check_pitch_classes(stored.get("pitch_classes", PITCH_CLASS_NAMES))
    types = list(stored.get("chord_types", []))
    if types == list(CHORD_TYPES):
        return
    differences = [
        f"class {i} is {theirs!r} in the checkpoint, {ours!r} in this version"
        for i, (theirs, ours) in enumerate(zip(types, CHORD_TYPES))
        if theirs != ours
    ]
    shown = differences[:3] + (
        [f"{len(differences) - 3} more classes differ"] if len(differences) > 3 else []
    )
    if len(types) != len(CHORD_TYPES):
        shown.append(f"{len(types)} chord types in the checkpoint, {len(CHORD_TYPES)} in this version")
    raise ValueError("the checkpoint was trained with a different chord vocabulary: " + "; ".join(shown))
