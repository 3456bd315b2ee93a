"""How many logical streams an Ogg file chains one after another, counted by walking its pages (no decoding).

Ogg files joined into one (``cat a.ogg b.ogg``, a recorded radio stream) are a valid chained stream, but
libsndfile decodes the first stream alone: `audiotrain.audio` refuses such a file rather than read it short.
"""

from __future__ import annotations

from pathlib import Path

#: A page header's fixed part: "OggS", version, header type, granule position, serial, sequence, CRC, and
#: the number of segments, whose sizes follow.
_HEADER_BYTES = 27
#: The header type's flag of a page that begins a logical stream.
_BEGINS_STREAM = 0x02


def chained_streams(path: str | Path) -> int:
    """The number of logical streams that begin one after another in the Ogg file at `path` (1 for an
    ordinary file), walking its pages until bytes that are not one (the end, or damage). Streams that begin
    together (multiplexed, as audio beside video) count as one."""
    data = Path(path).read_bytes()
    position, chained, beginning = 0, 0, False
    while data[position : position + 4] == b"OggS" and position + _HEADER_BYTES <= len(data):
        segments = data[position + 26]
        table = data[position + _HEADER_BYTES : position + _HEADER_BYTES + segments]
        begins = bool(data[position + 5] & _BEGINS_STREAM)
        chained += begins and not beginning  # a run of beginning pages is one group of streams
        beginning = begins
        position += _HEADER_BYTES + segments + sum(table)
    return chained
