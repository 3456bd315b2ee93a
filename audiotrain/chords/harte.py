"""Harte chord syntax (Harte et al., ISMIR 2005): parsing, formatting and transposition.

A label is ``N`` (no chord), ``X`` (unknown), or ``root[:shorthand][(degrees)][/bass]``::

    C            C major (the shorthand defaults to ``maj``)
    Bb:min7      B-flat minor seventh
    C:maj(9)/3   C major with an added ninth, third in the bass
    D:(1,5)      D with only a root and a fifth (empty shorthand)
    C:min(*5)    C minor without its fifth
    C:maj/E      bass written as a note (accepted here; formatted back as the interval ``3``)

The bass may be a scale degree (the Harte grammar) or a note name (common in hand-made annotations).
`format_harte` always writes the interval form, which ``mir_eval`` parses.

Pitch classes are integers ``C=0 ... B=11``. Intervals are semitones above the root.
"""

from __future__ import annotations

import numbers
import re
from dataclasses import dataclass, replace
from typing import Any

NO_CHORD = "N"
UNKNOWN_CHORD = "X"

#: Semitones above the root of the natural scale degrees 1-13.
_DEGREE_SEMITONES = {1: 0, 2: 2, 3: 4, 4: 5, 5: 7, 6: 9, 7: 11, 8: 12, 9: 14, 10: 16, 11: 17, 12: 19, 13: 21}
#: Scale degrees above the octave that the extended shorthands (9, 11, 13) name.
_EXTENSION_NUMBERS = ("9", "11", "13")

#: Scale degrees of each Harte shorthand (Harte 2005, table 1; the same set ``mir_eval`` accepts).
#: Extended shorthands (9, 11, 13) list their extensions: they sound, so they belong to the pitch classes.
SHORTHAND_DEGREES: dict[str, tuple[str, ...]] = {
    "maj": ("1", "3", "5"),
    "min": ("1", "b3", "5"),
    "dim": ("1", "b3", "b5"),
    "aug": ("1", "3", "#5"),
    "maj7": ("1", "3", "5", "7"),
    "min7": ("1", "b3", "5", "b7"),
    "7": ("1", "3", "5", "b7"),
    "dim7": ("1", "b3", "b5", "bb7"),
    "hdim7": ("1", "b3", "b5", "b7"),
    "minmaj7": ("1", "b3", "5", "7"),
    "maj6": ("1", "3", "5", "6"),
    "min6": ("1", "b3", "5", "6"),
    "9": ("1", "3", "5", "b7", "9"),
    "maj9": ("1", "3", "5", "7", "9"),
    "min9": ("1", "b3", "5", "b7", "9"),
    "11": ("1", "3", "5", "b7", "9", "11"),
    "min11": ("1", "b3", "5", "b7", "9", "11"),
    "13": ("1", "3", "5", "b7", "9", "11", "13"),
    "maj13": ("1", "3", "5", "7", "9", "11", "13"),
    "min13": ("1", "b3", "5", "b7", "9", "11", "13"),
    "sus2": ("1", "2", "5"),
    "sus4": ("1", "4", "5"),
    "1": ("1",),
    "5": ("1", "5"),
    "": (),
}

_NATURAL_PITCH = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}

#: Spelling used when formatting a pitch class (the most common spelling in published annotations).
PITCH_CLASS_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

#: Interval spelling used for a bass note that is not a named degree of the chord.
_DEFAULT_INTERVAL_NAMES = ("1", "b2", "2", "b3", "3", "4", "b5", "5", "b6", "6", "b7", "7")

# Accidentals are flats or sharps, not both ("C#b" is refused), as in mir_eval's grammar, which the labels
# are scored with: a label read here is one mir_eval reads.
_NOTE_RE = re.compile(r"^([A-G])(b*|#*)$")
_DEGREE_RE = re.compile(r"^(b*|#*)(1[0-3]|[1-9])$")
#: A degree past the octave (9, #11, b13): what a lead sheet adds after a slash.
_TENSION_RE = re.compile(r"^(b*|#*)(9|11|13)$")
_MIXED_ACCIDENTALS_RE = re.compile(r"^[A-G]?[b#]*(#b|b#)")
_LABEL_RE = re.compile(
    r"^(?P<root>[A-G](?:b*|#*))"
    r"(?::(?P<shorthand>[A-Za-z0-9]*)?(?:\((?P<degrees>[^()]*)\))?)?"
    r"(?:/(?P<bass>[^/]+))?$"
)


#: Lead-sheet chord suffixes (what follows the root in ``Am7``, ``Cmaj7``, ``F#m7b5``) and their Harte
#: spelling: the "did you mean" of a label that is not Harte syntax (`harte_spellings`). Case matters
#: (``CM7`` is C:maj7, ``Cm7`` C:min7). Keys that are Harte shorthands cover a label missing its colon. A
#: ``-`` after a root letter is a minus here, and a flat in music21's names: such a name gets both readings.
LEAD_SHEET_SUFFIXES: dict[str, str] = {
    "": "maj", "M": "maj", "maj": "maj", "major": "maj",
    "m": "min", "mi": "min", "min": "min", "-": "min", "minor": "min",
    "dim": "dim", "o": "dim", "°": "dim",
    "aug": "aug", "+": "aug",
    "7": "7", "dom7": "7",
    "maj7": "maj7", "M7": "maj7", "Maj7": "maj7", "ma7": "maj7", "j7": "maj7", "Δ": "maj7", "Δ7": "maj7",
    "m7": "min7", "mi7": "min7", "min7": "min7", "-7": "min7",
    "m7b5": "hdim7", "m7-5": "hdim7", "min7b5": "hdim7", "-7b5": "hdim7", "hdim7": "hdim7", "hdim": "hdim7",
    "ø": "hdim7", "ø7": "hdim7",
    "dim7": "dim7", "o7": "dim7", "°7": "dim7",
    "mmaj7": "minmaj7", "mMaj7": "minmaj7", "mM7": "minmaj7", "m(maj7)": "minmaj7", "minmaj7": "minmaj7",
    "6": "maj6", "M6": "maj6", "maj6": "maj6", "m6": "min6", "min6": "min6", "-6": "min6",
    "9": "9", "maj9": "maj9", "M9": "maj9", "m9": "min9", "min9": "min9", "-9": "min9",
    "11": "11", "m11": "min11", "min11": "min11", "-11": "min11",
    "13": "13", "maj13": "maj13", "M13": "maj13", "m13": "min13", "min13": "min13", "-13": "min13",
    "sus2": "sus2", "sus4": "sus4", "sus": "sus4", "7sus4": "sus4(b7)", "7sus": "sus4(b7)",
    "6/9": "maj6(9)", "69": "maj6(9)", "m6/9": "min6(9)", "m69": "min6(9)", "min6/9": "min6(9)",
    "5": "5", "add9": "maj(9)", "add2": "maj(2)", "madd9": "min(9)", "m(add9)": "min(9)",
    "aug7": "aug(b7)", "+7": "aug(b7)", "7#5": "aug(b7)",
    "7b9": "7(b9)", "7#9": "7(#9)", "7#11": "7(#11)", "7b13": "7(b13)", "maj7#11": "maj7(#11)",
    "9sus4": "sus4(b7,9)", "9sus": "sus4(b7,9)", "7sus2": "sus2(b7)",
}  # fmt: skip
#: What a label is, as the errors say it.
HARTE_GRAMMAR = "'N', 'X' or root[:shorthand][(degrees)][/bass], e.g. 'C:maj7/3'"
# A suffix ending in '6/9' keeps its slash: the 9 is a ninth added to the sixth chord, not a bass note.
_LEAD_SHEET_RE = re.compile(
    r"^(?P<root>[A-Ga-g][b#♭♯]*)(?P<colon>:?)(?P<suffix>[^/]*6/9|[^/]*)(?:/(?P<bass>.+))?$"
)

_ADDED_DEGREES_RE = re.compile(r"^(?P<suffix>[^(]*)\((?P<degrees>[^()]+)\)$")
#: How lead sheets and hand-written files mark no chord (a break, a count-in; McGill Billboard's '&pause',
#: kept in a .lab converted by hand from its salami_chords.txt): Harte's 'N'.
_NO_CHORD_RE = re.compile(r"^(n\.?c\.?|n/c|no chord|&pause)$", re.IGNORECASE)

#: The two readings of a root letter followed by ``-`` (``E-``, ``B-7``), in the order `harte_spellings` gives
#: them: a jazz lead sheet's minus (``E-`` is E minor) and music21's flat, which ChoCo's JAMS of Wikifonia,
#: Weimar and iReal keep (``E-`` is E-flat major, ``B-7`` B-flat 7).
MINUS_READINGS = ("jazz minus", "music21 flat")


class HarteError(ValueError):
    """A chord label that does not follow the Harte syntax; `label` is the label, `spellings` the Harte
    spellings of a lead-sheet name (`harte_spellings`: one, two for an ``E-``, or none) and `suggestion`
    the one spelling where there is exactly one, else None."""

    def __init__(
        self,
        message: str,
        label: str | None = None,
        suggestion: str | None = None,
        spellings: tuple[str, ...] | None = None,
    ):
        super().__init__(message)
        self.label = label
        self.spellings = spellings if spellings is not None else ((suggestion,) if suggestion else ())
        self.suggestion = self.spellings[0] if len(self.spellings) == 1 else None


def harte_spellings(label: str) -> tuple[str, ...]:
    """The Harte labels a lead-sheet chord name may mean, in the canonical spelling `format_harte` writes.

    One for most names (``Am`` → ``A:min``, ``G7`` → ``G:7``, ``F#m7b5`` → ``F#:hdim7``, ``a:min`` →
    ``A:min``, ``C:m7`` → ``C:min7``). Two for a root letter followed by ``-``, which is a jazz minus or
    music21's flat (`MINUS_READINGS`, in that order): ``E-`` → ``("E:min", "Eb:maj")``, ``B-7`` →
    ``("B:min7", "Bb:7")``; none where either reading has no spelling here, since giving the other as the
    one would turn a song's chords into wrong ones (``E-m7``, ``E-maj7``). None when `label` is no name of
    `LEAD_SHEET_SUFFIXES` (or already parses).
    """
    if _NO_CHORD_RE.match(label.strip()):
        return ("N",)
    if label.strip() in ("n", "x"):  # (a lower-case N or X, which mir_eval refuses too)
        return (label.strip().upper(),)
    without_spaces = "".join(label.split())
    if without_spaces != label.strip() and _spelled(without_spaces, label):  # 'C :maj', 'C:maj7 (9)'
        return (_spelled(without_spaces, label),)
    match = _LEAD_SHEET_RE.match(label.strip())
    if match is None:
        return ()
    root = match["root"][0].upper() + match["root"][1:].replace("♭", "b").replace("♯", "#")
    suffix = match["suffix"].strip()
    bass = f"/{match['bass'].strip()}" if match["bass"] else ""
    if re.match(r"^/[a-g](b*|#*)$", bass):  # a note bass in lower case ('C:min7/e'), as a root may be
        bass = bass[:2].upper() + bass[2:]
    if suffix and not match["colon"] and _TENSION_RE.match(bass[1:]):
        # On a lead sheet a slash before a tension adds it ('C7/9', 'Am7/11'); a bass is a note, or a degree
        # within the octave ('C7/3', Harte's bass without the colon): no lead sheet adds a chord's own 3.
        suffix, bass = f"{suffix}({bass[1:]})", ""
    quality = LEAD_SHEET_SUFFIXES.get(suffix) or _with_added_degrees(suffix)
    if quality is None and match["colon"]:  # 'C:maj7(9)' with a lower-case root, say
        quality = suffix
        # A Harte shorthand typed in another case ('C:Maj', 'A:MIN7'); one letter ('C:M') is a lead sheet's
        # major or minor, which case tells apart, and is read as such above.
        shorthand = suffix.split("(")[0]
        if len(shorthand) > 1 and shorthand.lower() in SHORTHAND_DEGREES:
            quality = shorthand.lower() + suffix[len(shorthand) :]
    jazz = _spelled(f"{root}:{quality}{bass}", label) if quality is not None else None
    if not suffix.startswith("-") or match["colon"] or len(root) > 1:
        return (jazz,) if jazz else ()  # ('Bb-7': music21 writes no 'b', so the '-' is a minus)
    without_flats = suffix.lstrip("-")
    flats = "b" * (len(suffix) - len(without_flats))
    music21_quality = LEAD_SHEET_SUFFIXES.get(without_flats)
    music21 = _spelled(f"{root}{flats}:{music21_quality}{bass}", label) if music21_quality else None
    return (jazz, music21) if jazz and music21 else ()


def _with_added_degrees(suffix: str) -> str | None:
    """The Harte quality of a lead-sheet suffix followed by Harte degrees in parentheses (``sus2(b7)``,
    ``7sus4(9)``), the degrees joined to those of the suffix's quality; None for any other suffix. A bare
    ``(9)`` is not one: ``C(9)`` on a lead sheet is C major with a ninth, ``C:(9)`` a root and ninth alone."""
    match = _ADDED_DEGREES_RE.match(suffix)
    quality = LEAD_SHEET_SUFFIXES.get(match["suffix"]) if match and match["suffix"] else None
    if quality is None:
        return None
    shorthand, _, degrees = quality.rstrip(")").partition("(")
    return f"{shorthand}({','.join(filter(None, (degrees, match['degrees'])))})"


def _spelled(candidate: str, label: str) -> str | None:
    """`candidate` in the spelling `format_harte` writes; None where it does not parse or is `label`."""
    if candidate == label.strip():
        return None
    try:
        return format_harte(parse_harte(candidate))
    except HarteError:
        return None


def harte_spelling(label: str) -> str | None:
    """The Harte label a lead-sheet chord name means (``Am`` → ``A:min``), where it has one reading only
    (`harte_spellings`); None for a name of two readings (``E-``: E minor or E-flat major) or of none."""
    spellings = harte_spellings(label)
    return spellings[0] if len(spellings) == 1 else None


def spellings_text(spellings: tuple[str, ...]) -> str:
    """`harte_spellings` as an error says them: ``'A:min'``; ``'E:min' (jazz minus) or 'Eb:maj' (music21
    flat)`` for the two readings of a ``-``."""
    if len(spellings) == 1:
        return repr(spellings[0])
    return " or ".join(f"{spelling!r} ({reading})" for spelling, reading in zip(spellings, MINUS_READINGS))


def _invalid_label(label: str, why: str) -> HarteError:
    """The error of a label that is not Harte syntax, with the Harte spelling of a lead-sheet name."""
    spellings = harte_spellings(label)
    hint = f"; did you mean {spellings_text(spellings)}?" if spellings else ""
    return HarteError(f"invalid chord label {label!r}: {why}{hint}", label, spellings=spellings)


def note_to_pitch_class(note: str) -> int:
    """Pitch class (C=0 ... B=11) of a note name such as ``C``, ``F#``, ``Bb``, ``Cbb``."""
    match = _NOTE_RE.match(note)
    if match is None:
        raise HarteError(
            f"invalid note name {note!r}: expected A-G followed by any number of 'b' or of '#' (not both)"
        )
    letter, accidentals = match.groups()
    return (_NATURAL_PITCH[letter] + accidentals.count("#") - accidentals.count("b")) % 12


def degree_to_semitones(degree: str) -> int:
    """Semitones above the root of a scale degree such as ``3``, ``b7``, ``#9`` (not reduced mod 12)."""
    match = _DEGREE_RE.match(degree)
    if match is None:
        raise HarteError(
            f"invalid scale degree {degree!r}: expected optional 'b's or '#'s (not both) and a number 1-13"
        )
    accidentals, number = match.groups()
    return _DEGREE_SEMITONES[int(number)] + accidentals.count("#") - accidentals.count("b")


@dataclass(frozen=True)
class HarteChord:
    """A parsed Harte label.

    Attributes
    ----------
    root : int or None
        Pitch class of the root (C=0); None for ``N`` and ``X``.
    shorthand : str
        Quality shorthand (``maj``, ``min7``, ...); ``""`` when the label lists degrees only.
    degrees : tuple of str
        Parenthesised degrees as written: added (``9``) or omitted (``*5``).
    bass : str
        Bass as a scale degree relative to the root (``1`` when the root is in the bass).
    root_name : str
        Root as written (``Bb``), kept so that formatting round-trips the spelling.
    symbol : str
        ``""`` for a chord, ``"N"`` or ``"X"`` for the special labels.
    """

    root: int | None
    shorthand: str = "maj"
    degrees: tuple[str, ...] = ()
    bass: str = "1"
    root_name: str = ""
    symbol: str = ""

    @property
    def is_chord(self) -> bool:
        """True unless the label is ``N`` or ``X``."""
        return self.symbol == ""

    @property
    def intervals(self) -> frozenset[int]:
        """Sounding pitch classes relative to the root (0-11), the bass included; empty for ``N`` and ``X``.

        Counted as ``mir_eval.chord.encode`` counts them (with ``reduce_extended_chords``, which keeps the
        extensions): one per pitch class of the shorthand's triad or seventh chord and of the root; then,
        over the *set* of the other degrees (the listed ones, and the 9ths, 11ths and 13ths of an extended
        shorthand), +1 for an added and -1 for an omitted one; the pitch classes above 0 sound, and so
        does the bass. So the order of the degrees does not matter (``C:maj(5,*5)`` is ``C:maj(*5,5)``,
        a C major triad), a degree both added and omitted counts as neither (``A:(*2,2)`` is ``A:1``), and
        ``*1`` omits the root (``A:maj(*1)/2`` sounds C#, E and B).
        """
        if not self.is_chord:
            return frozenset()
        counts = [0] * 12
        counts[0] = 1
        degrees = set(self.degrees)
        for degree in SHORTHAND_DEGREES[self.shorthand]:
            if _DEGREE_RE.match(degree).group(2) in _EXTENSION_NUMBERS:
                degrees.add(degree)  # (mir_eval moves an extended shorthand's 9, 11, 13 among the degrees)
            else:
                counts[degree_to_semitones(degree) % 12] = 1
        for degree in degrees:
            omitted = degree.startswith("*")
            counts[degree_to_semitones(degree.removeprefix("*")) % 12] += -1 if omitted else 1
        semitones = {interval for interval, count in enumerate(counts) if count > 0}
        semitones.add(self.bass_interval)
        return frozenset(semitones)

    @property
    def bass_interval(self) -> int:
        """Semitones from the root up to the bass, 0-11."""
        return degree_to_semitones(self.bass) % 12

    @property
    def bass_pitch_class(self) -> int | None:
        """Absolute pitch class of the bass; None for ``N`` and ``X``."""
        return None if self.root is None else (self.root + self.bass_interval) % 12

    @property
    def pitch_classes(self) -> frozenset[int]:
        """Absolute sounding pitch classes (C=0); empty for ``N`` and ``X``."""
        if self.root is None:
            return frozenset()
        return frozenset((self.root + i) % 12 for i in self.intervals)


def parse_harte(label: str) -> HarteChord:
    """Parse a Harte label.

    Parameters
    ----------
    label : str
        E.g. ``"C:maj7/3"``, ``"Bb:min"``, ``"N"``, ``"X"``, ``"D:(1,5)"``, ``"C:maj/E"``.

    Returns
    -------
    HarteChord

    Raises
    ------
    HarteError
        If the label is not valid Harte syntax; the message says which part is wrong.
    """
    text = label.strip()
    if text in (NO_CHORD, UNKNOWN_CHORD):
        return HarteChord(root=None, shorthand="", symbol=text)
    match = _LABEL_RE.match(text)
    if match is None and _MIXED_ACCIDENTALS_RE.match(text):
        raise HarteError(
            f"invalid chord label {label!r}: its root mixes 'b' and '#'; write flats or sharps, not both "
            "(mir_eval's grammar: e.g. 'C##', 'Dbb')",
            label,
        )
    if match is None and text.count("(") != text.count(")"):
        raise _invalid_label(
            label,
            f"its parentheses do not pair: '(' and ')' hold the degrees, e.g. 'C:maj7(9)' ({HARTE_GRAMMAR})",
        )
    if match is None:
        raise _invalid_label(label, f"expected {HARTE_GRAMMAR}")
    root_name = match.group("root")
    root = note_to_pitch_class(root_name)
    has_colon = ":" in text.split("/", 1)[0]
    shorthand = match.group("shorthand") or ""
    degrees_text = match.group("degrees")
    if not has_colon:
        shorthand = "maj"
    elif shorthand == "" and degrees_text is None:
        raise HarteError(f"invalid chord label {label!r}: nothing after ':'")
    if shorthand not in SHORTHAND_DEGREES:
        known = ", ".join(s for s in SHORTHAND_DEGREES if s)
        raise _invalid_label(label, f"unknown shorthand {shorthand!r} (known: {known})")
    degrees: tuple[str, ...] = ()
    if degrees_text is not None:
        degrees = tuple(d.strip() for d in degrees_text.split(","))
        if degrees == ("",):
            raise HarteError(
                f"invalid chord label {label!r}: empty degree list '()': list degrees such as "
                "'(9)' or '(*5)', or leave the parentheses out",
                label,
            )
        if "" in degrees:
            raise HarteError(
                f"invalid chord label {label!r}: an empty degree in '({degrees_text})' (a comma too many?)",
                label,
            )
        for degree in degrees:
            try:
                degree_to_semitones(degree[1:] if degree.startswith("*") else degree)
            except HarteError as err:
                raise HarteError(f"invalid chord label {label!r}: {err}") from None
    bass_text = match.group("bass")
    bass = "1"
    if bass_text is not None:
        bass_text = bass_text.strip()
        if _DEGREE_RE.match(bass_text):
            bass = bass_text
        elif _NOTE_RE.match(bass_text):
            bass = interval_name((note_to_pitch_class(bass_text) - root) % 12, shorthand, degrees)
        else:
            raise _invalid_label(
                label,
                f"bass {bass_text!r} is neither a scale degree (e.g. '3', 'b7') nor a note (e.g. 'E', 'Bb')",
            )
    return HarteChord(root=root, shorthand=shorthand, degrees=degrees, bass=bass, root_name=root_name)


def interval_name(semitones: int, shorthand: str = "", degrees: tuple[str, ...] = ()) -> str:
    """Scale-degree spelling of an interval (0-11), reusing the chord's own spelling when it has one.

    ``interval_name(3, "min")`` is ``"b3"``; ``interval_name(2, "9")`` is ``"2"`` (the ninth, brought into
    the octave so that it reads as a bass interval); ``interval_name(8, "aug")`` is ``"#5"``.
    """
    semitones %= 12
    for degree in (*SHORTHAND_DEGREES.get(shorthand, ()), *degrees):
        if degree.startswith("*") or degree_to_semitones(degree) % 12 != semitones:
            continue
        accidentals, number = _DEGREE_RE.match(degree).groups()
        number_in_octave = int(number) - 7 if int(number) > 7 else int(number)
        candidate = f"{accidentals}{number_in_octave}"
        if degree_to_semitones(candidate) % 12 == semitones:
            return candidate
    return _DEFAULT_INTERVAL_NAMES[semitones]


def format_harte(chord: HarteChord) -> str:
    """Write a `HarteChord` as a label ``mir_eval`` parses (bass always as an interval)."""
    if not chord.is_chord:
        return chord.symbol
    root_name = chord.root_name or PITCH_CLASS_NAMES[chord.root]
    text = f"{root_name}:{chord.shorthand}"
    if chord.degrees:
        text += "(" + ",".join(chord.degrees) + ")"
    if chord.bass_interval != 0:
        text += f"/{chord.bass}"
    return text


def semitone_count(semitones: Any) -> int:
    """`semitones` as an int, refusing what is no whole number of semitones, by name: a fraction (1.5 would
    give a root of pitch class 1.5, or a bare TypeError about tuple indices), a bool or a string."""
    exact = (
        isinstance(semitones, numbers.Real)
        and not isinstance(semitones, bool)
        and float(semitones).is_integer()
    )
    if not exact:
        raise ValueError(
            f"semitones must be a whole number of semitones (..., -1, 0, 1, ...), got {semitones!r}"
        )
    return int(semitones)


def transpose_chord(chord: HarteChord, semitones: int) -> HarteChord:
    """Move a chord's root by ``semitones`` (any integer; a fraction is a ValueError); ``N`` and ``X`` are
    unchanged."""
    semitones = semitone_count(semitones)
    if not chord.is_chord:
        return chord
    root = (chord.root + semitones) % 12
    return replace(chord, root=root, root_name=PITCH_CLASS_NAMES[root])


def transpose_label(label: str, semitones: int) -> str:
    """Transpose a Harte label by ``semitones``: ``transpose_label("A:min/b3", 3) == "C:min/b3"``.

    A ``semitones`` that is not a whole number is a ValueError naming it."""
    return format_harte(transpose_chord(parse_harte(label), semitones))
