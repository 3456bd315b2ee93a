"""Harte syntax: parsing, formatting, bass as interval or note, transposition."""

import re

from audiotrain.chords.harte import (
    HarteError,
    format_harte,
    harte_spelling,
    harte_spellings,
    note_to_pitch_class,
    parse_harte,
    transpose_label,
)
from audiotrain.chords.vocabulary import encode_label

import mir_eval
import pytest

REAL_LABELS = [
    "C:maj(9)/3", "Bb:7(b9)", "F#:min7/b7", "A:sus4(b7)", "D:(1,5)", "C", "C/5", "Eb:hdim7/b7", "G:13",
    "B:dim7/bb7", "A:aug/#5", "C:min(*b3)", "Db:maj6(9)", "E:7(#9)/3", "C:sus4(b7,9)", "Ab:min/b3",
    "F:maj7(#11)", "C#:min7(11)", "G:9(13)", "Cb:maj", "E#:min", "A:1", "A:5/5", "C:maj(*5)", "Bbb:maj",
    "F##:min7",
]  # fmt: skip


@pytest.mark.parametrize("label", REAL_LABELS)
def test_pitch_classes_match_mir_eval(label):
    """Our pitch classes equal mir_eval's bitmap with extensions expanded (root, set and bass)."""
    chord = parse_harte(label)
    root, bitmap, bass = mir_eval.chord.encode(label, reduce_extended_chords=True)
    assert chord.root == root
    assert chord.intervals == frozenset(int(i) for i in bitmap.nonzero()[0])
    assert chord.bass_interval == bass


@pytest.mark.parametrize(
    "label",
    ["C:maj(5,*5)", "C:maj(*5,5)", "A:(*2,2)", "C:(2,*2)", "A:maj(*1)/2", "C:maj(*1)", "C:9(*9,9)",
     "C:7(b7,*b7)", "G:13(*11)", "D:min(*b3,b3,*5)/5", "C:sus4(3,*4,4)",
     # the root sounds without being listed, and omitting a degree the chord lacks adds nothing
     "C:(3,5)/3", "C:(b3,b7)/b7", "C:maj(*b7)", "C:(*3)"],
)  # fmt: skip
def test_a_degree_both_added_and_omitted_and_an_omitted_root_count_as_in_mir_eval(label):
    """mir_eval sums +1 and -1 over the set of degrees, whatever their order, from a count that has the root:
    'C:maj(5,*5)' keeps its fifth (it was dropped here, as the omission came after the addition), 'A:(*2,2)'
    is the root alone (it was A with a 2, and so an X), and '*1' omits the root (which was put back). A
    degree list sounds its root even over another bass ('C:(3,5)/3' is a C major triad), and a count below
    zero ('C:maj(*b7)') is as silent as zero."""
    chord = parse_harte(label)
    _, bitmap, bass = mir_eval.chord.encode(label, reduce_extended_chords=True)
    assert chord.intervals == frozenset(int(i) for i in bitmap.nonzero()[0])
    assert chord.bass_interval == bass


@pytest.mark.parametrize("label", REAL_LABELS)
def test_format_round_trips(label):
    formatted = format_harte(parse_harte(label))
    assert parse_harte(formatted) == parse_harte(label)
    mir_eval.chord.encode(formatted)


def test_double_accidentals_move_the_note_two_semitones():
    """Harte and mir_eval allow them: Bbb is A, F## is G (encode_label's root, the training target)."""
    assert [note_to_pitch_class(note) for note in ("Cbb", "F##", "Bbb", "B##")] == [10, 7, 9, 1]
    assert encode_label("Bbb:maj").root == 9 and encode_label("F##:min").root == 7


def test_defaults_and_special_labels():
    assert parse_harte("C").shorthand == "maj"
    assert parse_harte("N").is_chord is False and parse_harte("X").symbol == "X"
    assert parse_harte("N").pitch_classes == frozenset()
    assert parse_harte("G:7").pitch_classes == frozenset({7, 11, 2, 5})


def test_bass_as_note_is_written_as_interval():
    chord = parse_harte("C:maj/E")
    assert chord.bass == "3" and chord.bass_pitch_class == 4
    assert format_harte(chord) == "C:maj/3"
    assert parse_harte("A:min/C").bass == "b3"
    assert parse_harte("Bb:7/Ab").bass == "b7"
    # An omitted degree is no spelling of the bass: G# over C major without its #5 is the default b6.
    assert format_harte(parse_harte("C:maj(*#5)/G#")) == "C:maj(*#5)/b6"


@pytest.mark.parametrize(
    "label, fragment",
    [
        ("H:maj", "expected"),
        ("C:mja", "unknown shorthand 'mja'"),
        ("C:maj(14)", "invalid chord label 'C:maj(14)': invalid scale degree '14'"),
        ("C:maj/Q", "bass 'Q'"),
        ("C/E:min", "bass 'E:min'"),  # a ':' after the '/' belongs to the bass, not to the root
        ("C:", "nothing after ':'"),
        ("Cmaj7", "expected"),
        ("", "expected"),
        # mir_eval's grammar takes flats or sharps, not both: it would refuse these mid-scoring
        ("C#b:maj", "its root mixes 'b' and '#'"),
        ("Cb#", "its root mixes 'b' and '#'"),
        ("C:maj(b#3)", "invalid scale degree 'b#3'"),
        ("C:maj/b#3", "bass 'b#3'"),
        ("C:maj/Eb#", "bass 'Eb#'"),
    ],
)
def test_invalid_labels_name_the_problem(label, fragment):
    with pytest.raises(HarteError, match=re.escape(fragment)):
        parse_harte(label)


def test_transpose_label():
    assert transpose_label("A:min/b3", 3) == "C:min/b3"
    assert transpose_label("C:maj7", -1) == "B:maj7"
    assert transpose_label("N", 5) == "N"
    for n in range(-12, 13):
        chord = parse_harte(transpose_label("E:7(b9)/3", n))
        assert chord.root == (4 + n) % 12 and chord.bass_pitch_class == (8 + n) % 12


@pytest.mark.parametrize(
    "label, harte",
    [
        ("Am", "A:min"), ("G7", "G:7"), ("Cmaj7", "C:maj7"), ("F#m7b5", "F#:hdim7"), ("Csus4", "C:sus4"),
        ("Bbm7", "Bb:min7"), ("Cdim7", "C:dim7"), ("C6", "C:maj6"), ("Am/C", "A:min/b3"), ("a:min", "A:min"),
        ("C:m7", "C:min7"), ("G7sus4", "G:sus4(b7)"), ("Cadd9", "C:maj(9)"), ("CM7", "C:maj7"),
        ("Csus", "C:sus4"),
    ],
)  # fmt: skip
def test_a_lead_sheet_chord_name_is_refused_with_its_harte_spelling(label, harte):
    """'Am', 'G7', 'Cmaj7' fill musicians' own files: the error says the Harte label to write instead (and
    that label means the chord mir_eval reads it as)."""
    with pytest.raises(HarteError, match=f"did you mean '{re.escape(harte)}'") as info:
        parse_harte(label)
    assert info.value.suggestion == harte
    assert format_harte(parse_harte(harte)) == harte
    mir_eval.chord.encode(harte)


def test_a_bare_root_is_a_major_chord_and_names_nothing_else():
    assert format_harte(parse_harte("Bb")) == "Bb:maj"
    with pytest.raises(HarteError) as info:
        parse_harte("H:maj")
    assert info.value.suggestion is None and "did you mean" not in str(info.value)


@pytest.mark.parametrize(
    "label, jazz, music21",
    [("E-", "E:min", "Eb:maj"), ("B-7", "B:min7", "Bb:7"), ("A-6", "A:min6", "Ab:maj6"),
     ("e-/G", "E:min/b3", "Eb:maj/3")],
)  # fmt: skip
def test_a_root_letter_then_a_minus_is_given_both_readings(label, jazz, music21):
    """'E-' is E minor on a jazz lead sheet but E-flat major in music21's names (ChoCo's Wikifonia JAMS, in
    E-flat major: its key reads 'E- major'). Said to be 'E:min' alone, a file fixed by the hint turned an
    E-flat major song into E minor; the hint names both, and harte_spelling (one label) gives none."""
    assert harte_spellings(label) == (jazz, music21)
    assert harte_spelling(label) is None
    with pytest.raises(HarteError) as info:
        parse_harte(label)
    hint = f"did you mean {jazz!r} (jazz minus) or {music21!r} (music21 flat)?"
    assert hint in str(info.value) and info.value.suggestion is None
    assert info.value.spellings == (jazz, music21)
    for harte in (jazz, music21):
        assert format_harte(parse_harte(harte)) == harte
        mir_eval.chord.encode(harte)


def test_a_minus_name_with_one_reading_spelled_here_gets_no_hint_and_a_flat_root_keeps_its_minus():
    """'E-maj7' is E minor-major 7 (jazz) or E-flat major 7 (music21); the jazz one has no entry here, and
    giving the other alone would state it as the fact. After 'Bb' the '-' is a minus: music21 has no 'b'."""
    for label in ("E-maj7", "E-m7", "E-7b5"):
        assert harte_spellings(label) == () and harte_spelling(label) is None
        with pytest.raises(HarteError) as info:
            parse_harte(label)
        assert "did you mean" not in str(info.value)
    assert harte_spellings("Bb-7") == ("Bb:min7",) and harte_spelling("Bb-7") == "Bb:min7"


def test_a_suffix_without_a_colon_that_is_no_lead_sheet_name_gets_no_hint():
    """'C(9)' on a lead sheet is C major with a ninth: read as the Harte degree list 'C:(9)' it would be a
    root and a ninth alone, so no spelling is offered."""
    assert harte_spellings("C(9)") == ()


@pytest.mark.parametrize(
    "label, spelling",
    [
        ("C:Maj", "C:maj"),
        ("C:MAJ", "C:maj"),
        ("A:Min7", "A:min7"),
        ("F#:DIM7", "F#:dim7"),
        ("B:Hdim7/b7", "B:hdim7/b7"),
    ],
)
def test_a_harte_shorthand_in_other_case_gets_its_spelling(label, spelling):
    """'C:m' got "did you mean 'C:min'?", but 'C:Maj', 'C:MAJ' or 'A:Min7' (a shorthand typed capitalised, as
    a spreadsheet's autocorrect does) only the list of shorthands, which the user had to compare letter by
    letter with theirs."""
    with pytest.raises(HarteError, match=re.escape(f"did you mean {spelling!r}?")):
        parse_harte(label)


@pytest.mark.parametrize(
    "label, harte",
    [("C6/9", "C:maj6(9)"), ("C69", "C:maj6(9)"), ("Am6/9", "A:min6(9)"), ("C6/9/E", "C:maj6(9)/3")],
)
def test_a_six_nine_chord_is_spelled_with_its_ninth_added_not_as_a_bass_note(label, harte):
    """A guitarist's 'C6/9' is C6 with an added ninth, its bass C. The hint said 'C:maj6/9', which Harte and
    mir_eval read as C6 over a D bass: a file fixed by it trained and scored the wrong bass."""
    with pytest.raises(HarteError) as info:
        parse_harte(label)
    assert info.value.suggestion == harte
    assert format_harte(parse_harte(harte)) == harte


def test_the_six_nine_hint_keeps_the_bass_mir_eval_reads_at_the_root():
    _, _, bass = mir_eval.chord.encode(harte_spelling("C6/9"))
    assert bass == 0


@pytest.mark.parametrize("label", ["N.C.", "NC", "N/C", "n.c.", "N.C"])
def test_a_no_chord_mark_gets_the_harte_n(label):
    """Hand-written and lead-sheet annotations mark silence or a break 'N.C.'; the error named only the
    grammar, not that Harte's no-chord is 'N'."""
    with pytest.raises(HarteError, match=re.escape("did you mean 'N'?")):
        parse_harte(label)


@pytest.mark.parametrize(
    "label, harte",
    [("Csus2(b7)", "C:sus2(b7)"), ("E7(#9)", "E:7(#9)"), ("G7sus4(9)", "G:sus4(b7,9)"), ("Am(maj9)", None)],
)
def test_a_lead_sheet_name_with_degrees_in_parentheses_keeps_them(label, harte):
    """'Csus2(b7)' got no hint, though 'Csus2' did: the degrees in parentheses are Harte's own."""
    assert harte_spelling(label) == harte
    if harte:
        mir_eval.chord.encode(harte)


@pytest.mark.parametrize(
    "label, harte",
    [("C7/9", "C:7(9)"), ("Cmaj7/9", "C:maj7(9)"), ("Am7/11", "A:min7(11)"), ("Dm/b9", "D:min(b9)")],
)
def test_a_number_after_a_lead_sheet_slash_is_an_added_degree_not_a_bass(label, harte):
    """On a lead sheet a slash before a note is the bass (C/E) and before a number an added degree (C7/9):
    'C7/9' got "did you mean 'C:7/9'?", which mir_eval reads as C7 over a D bass."""
    assert harte_spelling(label) == harte
    _, _, bass = mir_eval.chord.encode(harte)
    assert bass == 0


@pytest.mark.parametrize(
    "label, harte",
    [("E7#9", "E:7(#9)"), ("C7b9", "C:7(b9)"), ("Cmaj7#11", "C:maj7(#11)"), ("G9sus4", "G:sus4(b7,9)"),
     ("A7sus2", "A:sus2(b7)"), ("D7#5", "D:aug(b7)")],
)  # fmt: skip
def test_a_guitarists_altered_chord_gets_its_harte_spelling(label, harte):
    """'E7#9' (the Hendrix chord), 'C7b9', 'Cmaj7#11' got the grammar alone, where 'E7' got 'E:7'."""
    assert harte_spelling(label) == harte
    mir_eval.chord.encode(harte)


@pytest.mark.parametrize(
    "label, harte",
    [("C7/3", "C:7/3"), ("C7/b7", "C:7/b7"), ("Am7/5", "A:min7/5"), ("C6/9/3", "C:maj6(9)/3")],
)  # fmt: skip
def test_a_chord_tone_after_a_lead_sheet_slash_stays_the_bass(label, harte):
    """A degree within the octave after the slash ('C7/3', Harte's bass degree without the colon) names a
    note of the chord, an added degree only from 9 up: 'C7/3' got 'C:7(3)' (no bass) and 'C6/9/3'
    'C:maj6(9,3)' once a number after the slash was read as an added degree; each is the bass mir_eval
    reads, as before."""
    assert harte_spelling(label) == harte
    _, _, bass = mir_eval.chord.encode(harte)
    assert bass != 0
