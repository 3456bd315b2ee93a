"""How many samples an MP3 file's frames hold, counted by walking their headers (no decoding).

libsndfile (through libmpg123) decodes an MP3 only up to the length its first frame gives: a Xing/Info
header's frame count, or without one an estimate from the first frame's bitrate. Where that is shorter than
the file (MP3s joined after one with a Xing header, a VBR file without one whose first frame has a low
bitrate), it stops early without a word: `audiotrain.audio` compares its length with this count.
"""

from __future__ import annotations

from pathlib import Path

# Bitrates in kbit/s by (MPEG-1, layer) and (MPEG-2/2.5, layer), index 1-14 of the header's 4 bits.
_BITRATES = {
    (True, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
# Sample rates by the header's 2 version bits (3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5).
_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _frame(header: bytes) -> tuple[int, int, int, tuple[int, int]] | None:
    """(bytes, samples, sample rate, stream kind) of the frame whose 4 header bytes are `header`, or None
    where they are no frame header (or a free-format one, whose length the header does not give)."""
    if header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version, layer_bits = (header[1] >> 3) & 3, (header[1] >> 1) & 3
    bitrate_index, rate_index = header[2] >> 4, (header[2] >> 2) & 3
    if version == 1 or layer_bits == 0 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    layer, mpeg1 = 4 - layer_bits, version == 3
    bitrate = _BITRATES[mpeg1, layer][bitrate_index - 1] * 1000
    rate = _SAMPLE_RATES[version][rate_index]
    padding = (header[2] >> 1) & 1
    if layer == 1:
        return (12 * bitrate // rate + padding) * 4, 384, rate, (version, layer)
    samples = 1152 if layer == 2 or mpeg1 else 576
    return samples // 8 * bitrate // rate + padding, samples, rate, (version, layer)


def _audio_start(data: bytes) -> int:
    """Where the frames start: after an ID3v2 tag (10 bytes, its syncsafe size, and a footer if flagged)."""
    if data[:3] != b"ID3" or len(data) < 10:
        return 0
    size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]
    return 10 + size + (10 if data[5] & 0x10 else 0)


def mp3_samples(path: str | Path) -> tuple[int, int] | None:
    """(samples per channel, sample rate) that the frames of the MP3 at `path` hold, walking from the
    first frame to the first bytes that are not the next frame of the same stream (a trailing ID3v1 or APE
    tag, damage); None where no frame starts the audio. A Xing/Info frame counts as one frame of samples
    (the decoder plays none), so the count may exceed what decodes by a frame and the encoder's padding."""
    data = Path(path).read_bytes()
    position = _audio_start(data)
    first = _frame(data[position : position + 4]) if len(data) >= position + 4 else None
    if first is None:
        return None
    samples = 0
    while position + 4 <= len(data):
        frame = _frame(data[position : position + 4])
        if frame is None or frame[2:] != first[2:] or position + frame[0] > len(data):
            break
        samples += frame[1]
        position += frame[0]
    return samples, first[2]
