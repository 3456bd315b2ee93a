"""Chord labels: Harte syntax, the 32-type vocabulary, ``.lab``/JAMS files and decoding of posteriors."""

from audiotrain.chords.decode import (
    DecodeConfig,
    decode_frames,
    decode_frames_and_offsets,
    decode_posteriors,
    frames_to_segments,
)
from audiotrain.chords.harte import HarteChord, HarteError, format_harte, parse_harte, transpose_label
from audiotrain.chords.lab import (
    AnnotationError,
    AnnotationWarning,
    ChordSegment,
    read_annotation,
    read_jams,
    read_lab,
    write_jams,
    write_lab,
)
from audiotrain.chords.vocabulary import (
    CHORD_TYPES,
    IGNORE_INDEX,
    NUM_CHORD_TYPES,
    NUM_PITCH_CLASSES,
    ChordIndex,
    decode_label,
    encode_label,
    normalize_label,
    transpose_index,
    vocabulary_dict,
)

__all__ = [
    "AnnotationError",
    "AnnotationWarning",
    "CHORD_TYPES",
    "ChordIndex",
    "ChordSegment",
    "DecodeConfig",
    "HarteChord",
    "HarteError",
    "IGNORE_INDEX",
    "NUM_CHORD_TYPES",
    "NUM_PITCH_CLASSES",
    "decode_frames",
    "decode_frames_and_offsets",
    "decode_label",
    "decode_posteriors",
    "encode_label",
    "format_harte",
    "frames_to_segments",
    "normalize_label",
    "parse_harte",
    "read_annotation",
    "read_jams",
    "read_lab",
    "transpose_index",
    "transpose_label",
    "vocabulary_dict",
    "write_jams",
    "write_lab",
]
