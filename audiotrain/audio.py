"""Reading and resampling audio files.

`load` reads WAV, FLAC, OGG (Vorbis/Opus), MP3 and AIFF through ``soundfile`` (libsndfile), seeking to
``offset`` instead of decoding the whole file, downmixes to mono and resamples with ``soxr`` exactly as
``librosa.load(..., res_type="soxr_hq")`` does. Every way a file can be bad raises an `AudioError` that
names the file and the cause; loaders that prefer to skip bad files count the skips in a `SkipCounter`
and report them at the end of a run.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import io
import math
import mimetypes
import numbers
import os
import re
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

from audiotrain._files import write_given_path
from audiotrain._lfs import file_pointer_text
from audiotrain._mp3_frames import mp3_samples
from audiotrain._ogg_pages import chained_streams
from audiotrain._system import usable_cores
from audiotrain._text import shell_word

import numpy as np
import soundfile as sf
import soxr

__all__ = [
    "AudioError",
    "SkipCounter",
    "load",
    "load_span",
    "save",
    "channel_peaks",
    "decoded_length",
    "resample",
    "get_duration",
    "header_length",
    "too_short_detail",
    "AUDIO_SUFFIXES",
    "UNREADABLE_AUDIO_SUFFIXES",
]

# Suffixes libsndfile decodes; anything else is rejected before decoding is attempted.
AUDIO_SUFFIXES = frozenset({".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff"})
# Common audio containers libsndfile cannot read: the error says how to convert them.
UNREADABLE_AUDIO_SUFFIXES = frozenset(
    {".m4a", ".mp4", ".aac", ".wma", ".webm", ".ape", ".mka", ".amr", ".3gp"}
)
# Leading bytes of the formats above, to tell "corrupt audio" from "not audio at all".
_MAGICS = (
    b"RIFF",
    b"RIFX",
    b"RF64",
    b"fLaC",
    b"OggS",
    b"ID3",
    b"FORM",
    b"\xff\xfb",
    b"\xff\xf3",
    b"\xff\xf2",
)

CAUSES = {
    "missing": "file does not exist",
    "not_a_file": "path is not a regular file",
    "unreadable": "file cannot be read (permission denied)",
    "empty": "file is empty (0 bytes)",
    "zero_length": "audio stream has no samples",
    "corrupt": "file is corrupt or truncated",
    "not_audio": "file is not audio",
    "unsupported_format": "unsupported audio format",
    "non_finite": "audio contains NaN or Inf samples",
    "out_of_range": "requested offset lies beyond the end of the audio",
    "too_short": "audio is too short",
    "low_sample_rate": "sample rate too low for audio features",
    "too_long": "audio is too long to load into memory",
}

#: The lowest sample rate accepted (telephone audio is 8000 Hz): a file claiming 1 Hz holds no usable sound,
#: and resampling its few samples would invent seconds of audio.
MIN_SAMPLE_RATE = 1000


class AudioError(Exception):
    """A file that cannot be used as audio.

    Attributes
    ----------
    path : pathlib.Path
        The offending file.
    cause : str
        One of the keys of `CAUSES` ("missing", "not_a_file", "unreadable", "empty", "zero_length",
        "corrupt", "not_audio", "unsupported_format", "non_finite", "out_of_range", "too_short",
        "low_sample_rate", "too_long"), so loaders can count skips by cause.
    detail : str
        What the decoder said, or what was expected.
    """

    def __init__(self, path: str | Path, cause: str, detail: str = ""):
        if cause not in CAUSES:
            raise ValueError(f"unknown AudioError cause {cause!r}; expected one of {sorted(CAUSES)}")
        self.path = Path(path)
        self.cause = cause
        self.detail = detail
        message = f"{self.path}: {CAUSES[cause]}"
        super().__init__(f"{message} ({detail})" if detail else message)

    def __reduce__(self):
        # Rebuild from the fields, so the error survives the trip back from a worker process.
        return (type(self), (self.path, self.cause, self.detail))


#: What libsndfile says of a file it opened but found no format it knows in (a damaged MP3, garbage named
#: .wav): its words, true of a missing file, are not true of this one.
_NOT_A_REGULAR_FILE = "File does not exist or is not a regular file (possibly a pipe?)."


def _decoder_said(path: Path, error: Exception) -> str:
    """The decoder's message, but for libsndfile's `_NOT_A_REGULAR_FILE` about a regular file that exists."""
    text = str(error)
    if _NOT_A_REGULAR_FILE in text and path.is_file():
        return text.replace(_NOT_A_REGULAR_FILE, "libsndfile found no audio format it can decode in it.")
    return text


def _conversion(path: Path) -> str:
    """The ffmpeg command that converts `path` to FLAC beside it (WAV for a file named .flac: never onto
    itself), as the chord recipe's scan gives it; ffmpeg reads the file by its content, whatever its name."""
    output = path.with_suffix(".wav" if path.suffix.lower() == ".flac" else ".flac")
    return f"convert it to WAV or FLAC, e.g. ffmpeg -i {shell_word(str(path))} {shell_word(str(output))}"


def _unread_container(head: bytes) -> str:
    """The format libsndfile does not read that a file starting with `head` is in, or "": a renamed iTunes
    rip (``.m4a`` saved as ``.mp3``), a WMA as ``.wav``, a video site's download as ``.ogg``."""
    if head[4:8] == b"ftyp":
        return "an M4A/MP4 file"
    if head.startswith(_ASF):
        return "a Windows Media (WMA) file"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "a WebM or Matroska file"
    # ADTS frames: the MPEG sync word with layer bits 00, which MPEG audio (MP3) never has.
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:
        return "raw AAC audio"
    return ""


#: The first bytes of an ASF (Windows Media) file: its header object's GUID.
_ASF = bytes.fromhex("3026B2758E66CF11A6D900AA0062CE6C")


def _classify_decode_failure(path: Path, error: Exception) -> AudioError:
    suffix = path.suffix.lower()
    if suffix in UNREADABLE_AUDIO_SUFFIXES:
        return AudioError(
            path, "unsupported_format", f"{suffix} is not readable by libsndfile; {_conversion(path)}"
        )
    with open(path, "rb") as handle:
        head = handle.read(_SNIFFED_BYTES)
    container = _unread_container(head)
    if container:
        # Not corrupt: a sound file of another format under an audio suffix, which the user would otherwise
        # download again or throw away.
        return AudioError(path, "unsupported_format", f"{_named(container, suffix)}; {_conversion(path)}")
    looks_like_audio = head.startswith(_MAGICS) or (len(head) > 1 and head[0] == 0xFF and head[1] >= 0xE0)
    if looks_like_audio:
        return AudioError(path, "corrupt", _decoder_said(path, error))
    # Named like audio but plainly something else: a text file renamed .wav, a macOS AppleDouble twin.
    pointer = file_pointer_text(path)  # (a dataset cloned without Git LFS: the fix is a command)
    if pointer:
        return AudioError(path, "not_audio", pointer)
    kind = "a macOS AppleDouble file, the metadata of another" if head.startswith(_APPLEDOUBLE) else ""
    kind = kind or _text_kind(head)
    if kind:
        return AudioError(path, "not_audio", _named(kind, suffix))
    if suffix in AUDIO_SUFFIXES:
        return AudioError(path, "corrupt", _decoder_said(path, error))
    return AudioError(
        path, "not_audio", f"suffix {suffix or '(none)'!r}; decoder said: {_decoder_said(path, error)}"
    )


#: Suffixes of chord annotations (``predict song.lab``): a text file so named is said to be one.
_ANNOTATION_SUFFIXES = (".lab", ".jams")


def _named(kind: str, suffix: str) -> str:
    """What a file that is not audio is (`kind`: ``"text, '0 1 C:maj'"``), with its name's `suffix`: "though
    named" an audio suffix only, so that ``.lab`` does not read as one; a text file named as a chord
    annotation is said to be one."""
    if suffix in _ANNOTATION_SUFFIXES and kind.startswith("text"):
        return f"a {suffix} chord annotation: {kind}"
    media_type = mimetypes.guess_type(f"x{suffix}")[0] or ""
    if suffix in AUDIO_SUFFIXES or media_type.startswith(("audio/", "video/")):
        return f"{kind}, though named {suffix}"
    return f"{kind}, named {suffix}" if suffix else f"{kind}, named without a suffix"


#: Bytes `_classify_decode_failure` reads from the start of a file it could not decode.
_SNIFFED_BYTES = 512
#: The start of an AppleDouble file (macOS metadata beside a file on FAT, exFAT or network shares: ``._x.wav``).
_APPLEDOUBLE = b"\x00\x05\x16\x07"


def _text_kind(head: bytes) -> str:
    """``"text, 'a shopping list...'"`` if `head` reads as UTF-8 text, else ""."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:  # a character cut at the end of the bytes read is still text
        if error.start < len(head) - 3:
            return ""
        text = head[: error.start].decode("utf-8")
    printable = sum(ch.isprintable() or ch in "\t\r\n" for ch in text)
    if not text or printable < 0.95 * len(text):
        return ""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"text, {first[:40]!r}{'...' if len(first) > 40 else ''}"


def _file_path(path: str | Path, function: str) -> Path:
    """`path` as a Path, a leading ~ the home folder (as `save` writes it). A file object or the file's
    bytes (a member read from a tar shard) is refused naming `function`: Path() raised "expected str, bytes or
    os.PathLike object, not BytesIO", naming neither the function nor a way on."""
    if isinstance(path, (str, os.PathLike)):
        return Path(path).expanduser()
    in_memory = isinstance(path, (bytes, bytearray, memoryview))
    kind = "bytes" if in_memory else type(path).__name__
    hint = (
        ". For audio in memory or in a file object (a member of a tar shard), decode it with "
        "soundfile.read(io.BytesIO(data), dtype='float32') or write it to a file first"
        if in_memory or hasattr(path, "read")
        else ""
    )
    raise TypeError(
        f"audiotrain.audio.{function} reads an audio file by its path (a str or pathlib.Path), "
        f"got {kind}{hint}"
    )


def _open(path: Path) -> sf.SoundFile:
    if not path.exists():
        # A link into an unmounted drive or a moved folder: say where it points, as `ls -l` would.
        link = f"a symlink to {os.readlink(path)}, which does not exist" if path.is_symlink() else ""
        raise AudioError(path, "missing", link)
    if not path.is_file():
        raise AudioError(path, "not_a_file", "a folder" if path.is_dir() else "")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty")
    if not os.access(path, os.R_OK):
        raise AudioError(path, "unreadable")
    if path.suffix.lower() in UNREADABLE_AUDIO_SUFFIXES:
        raise _classify_decode_failure(path, RuntimeError("unsupported container"))
    try:
        with _decoder_messages_named(path):
            handle = _OwnedSoundFile(open(path, "rb"), _soundfile_name(path))
        if handle.frames == 0 and handle.format in ("WAV", "WAVEX"):
            handle = _reopen_unfinalised_wav(path, handle)
        if handle.frames == _SF_COUNT_MAX and handle.format == "FLAC":
            handle = _reopen_unknown_length_flac(path, handle)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        raise _classify_decode_failure(path, error) from error
    if handle.samplerate < MIN_SAMPLE_RATE:
        handle.close()
        raise AudioError(
            path, "low_sample_rate", f"{handle.samplerate} Hz; expected at least {MIN_SAMPLE_RATE} Hz"
        )
    if handle.format in ("MP3", "OGG"):  # (formats whose decoder may stop before the file's end)
        stat = path.stat()
        cut_short = _read_short(
            str(path), stat.st_size, stat.st_mtime_ns, handle.format, handle.samplerate, handle.frames
        )
    else:
        cut_short = ""
    if cut_short:
        handle.close()
        raise AudioError(path, "corrupt", cut_short)
    return handle


#: Seconds an MP3's frames may hold beyond what its decoder gives (a Xing frame, the encoder's padding).
_MP3_SLACK_S = 1.0


@functools.lru_cache(maxsize=4096)
def _read_short(name: str, size: int, mtime_ns: int, kind: str, sample_rate: int, frames: int) -> str:
    """Why the decoder reads only part of the MP3 or Ogg file `name`, else "". Walking the file's frames
    or pages reads all of it, so the answer is kept for the file as it is (its size and modification
    time): a CLAP run crops its clips from the same files every epoch."""
    path = Path(name)
    if kind == "MP3":
        return _mp3_decoded_short(path, sample_rate, frames)
    streams = chained_streams(path) if kind == "OGG" else 1
    if streams > 1:
        return (
            f"{streams} Ogg streams one after another (Ogg files joined into one, or a recorded radio "
            f"stream), of which the decoder reads the first alone; {_conversion(path)}, which reads them all"
        )
    return ""


def _mp3_decoded_short(path: Path, sample_rate: int, frames: int) -> str:
    """Why the MP3 at `path`, opened as `frames` at `sample_rate`, decodes only part of the file's audio,
    else "": libmpg123 stops at the length its first frame gives, silently (its only word, "Xing stream
    size off", was printed for a truncated file)."""
    held = mp3_samples(path)
    if held is None or held[1] != sample_rate:
        return ""
    held_s, decoded_s = held[0] / held[1], frames / sample_rate
    if held_s - decoded_s <= _MP3_SLACK_S:
        return ""
    return (
        f"its frames hold {held_s:.1f} s of audio, but the decoder stops at {decoded_s:.1f} s, the length "
        f"its first frame gives (MP3 files joined into one, or a VBR file without a Xing header); "
        f"{_conversion(path)}, which reads every frame"
    )


def _soundfile_name(path: Path) -> str | bytes:
    """The name to give soundfile for `path`: its text, or where the locale's encoding cannot hold it (a
    non-ASCII name under ``LC_ALL=C`` with Python's UTF-8 mode off) the bytes Python opens it by.
    soundfile encodes a text name strictly, so such a file, which Python reads, was called corrupt."""
    name = str(path)
    if sys.platform == "win32":  # (soundfile opens text names with the wide-character API there)
        return name
    try:
        name.encode(sys.getfilesystemencoding())
    except UnicodeEncodeError:
        return os.fsencode(name)
    return name


#: What libmpg123 prints on its own while an MP3 opens that says nothing `load` does not check itself:
#: the Xing header's length is off (a truncated or re-cut file; `load` reports the truncation, and frames
#: beyond that length: `_mp3_decoded_short`).
_IGNORED_DECODER_MESSAGES = ("Xing stream size off",)
#: One redirection of the process's stderr at a time (threads of a loader open files together).
_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def _decoder_messages_named(path: Path):
    """While an MP3 opens, libmpg123's messages (printed by C code straight to the process's stderr, without
    the file's name, 2-5 times a run on a truncated MP3) are caught, and printed again after the file's name;
    `_IGNORED_DECODER_MESSAGES` not at all. Other files, and a process whose stderr cannot be redirected,
    open as they are."""
    if path.suffix.lower() != ".mp3":
        yield
        return
    with _STDERR_LOCK:
        try:
            if sys.stderr is not None:  # (None: a closed stderr, `2>&-`, where they cannot be shown)
                sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):
            yield
            return
        with tempfile.TemporaryFile() as caught:
            os.dup2(caught.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            caught.seek(0)
            text = caught.read().decode(errors="replace")
    if sys.stderr is None:  # (`print` would put them on stdout, among a transcription printed there)
        return
    for line in text.splitlines():
        if line.strip() and not any(message in line for message in _IGNORED_DECODER_MESSAGES):
            print(f"{path}: {line.strip()}", file=sys.stderr)


class _PatchedFile(io.RawIOBase):
    """A file read through with some of its bytes replaced (`patches`: offset → bytes), for libsndfile."""

    def __init__(self, path: Path, patches: dict[int, bytes]):
        self._file = open(path, "rb")  # closed with this object
        self._patches = patches

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def readinto(self, buffer) -> int:
        start = self._file.tell()
        n = self._file.readinto(buffer)
        view = memoryview(buffer).cast("B")
        for offset, data in self._patches.items():
            lo, hi = max(offset, start), min(offset + len(data), start + n)
            if lo < hi:
                view[lo - start : hi - start] = data[lo - offset : hi - offset]
        return n

    def close(self) -> None:
        self._file.close()
        super().close()


class _OwnedSoundFile(sf.SoundFile):
    """A `soundfile.SoundFile` over a file Python opened, which it closes with itself: a file by its
    descriptor, a `_PatchedFile` through its methods. libsndfile opens a name through a 1024-byte buffer, so
    a file whose path is longer (Linux allows 4096 bytes) was "corrupt or truncated"; Python opens it.
    `name` (the path as soundfile would have been given it) names the file in its errors, as before."""

    def __init__(self, file: io.BufferedReader | _PatchedFile, name: str | bytes):
        self._owned = file
        try:
            if isinstance(file, _PatchedFile):
                super().__init__(file, closefd=False)
            else:
                # A descriptor of its own, which libsndfile closes: the libsndfile 1.2.0 of soundfile 0.12.1
                # (the declared minimum) closes the one it is given when it cannot read the file, even with
                # closefd=False, so closing ours after it raised a bare OSError (Bad file descriptor) in
                # place of "corrupt or truncated".
                super().__init__(os.dup(file.fileno()), closefd=True)
        except sf.LibsndfileError as error:
            file.close()
            raise sf.LibsndfileError(error.code, prefix=f"Error opening {name!r}: ") from None
        except BaseException:
            file.close()
            raise
        self._name = name

    def close(self) -> None:
        super().close()
        self._owned.close()


def _reopen_unfinalised_wav(path: Path, handle: sf.SoundFile) -> sf.SoundFile:
    """A WAV whose header says its data chunk holds 0 bytes, with samples after it, read to the end of the
    file; any other file as it was opened.

    A recorder that crashed or was killed before finalising its file leaves the sizes it writes at the
    start, 0; libsndfile then reads no samples, while the 0xFFFFFFFF that streaming writers leave makes it
    read to the end. The samples are all there, so the file reads as if its sizes had been written.
    """
    with open(path, "rb") as file:
        header = file.read(12)
        if header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return handle
        size = os.fstat(file.fileno()).st_size
        position, block = 12, 0
        while position + 8 <= size:
            file.seek(position)
            chunk, length = file.read(4), int.from_bytes(file.read(4), "little")
            if chunk == b"fmt ":  # its block align: bytes per frame (per block, for ADPCM)
                block = int.from_bytes(file.read(14)[12:14], "little")
            if chunk == b"data":
                after = file.read(8)  # a chunk after an empty data chunk ("LIST"): a file truly empty
                break
            position += 8 + length + (length & 1)
        else:
            return handle
    data_bytes = (size - position - 8) // block * block if block else 0
    next_chunk = len(after) == 8 and after[:4].isalnum() and int.from_bytes(after[4:], "little") <= size
    if length != 0 or data_bytes <= 0 or next_chunk:
        return handle
    handle.close()
    patches = {4: (size - 8).to_bytes(4, "little"), position + 4: data_bytes.to_bytes(4, "little")}
    return _OwnedSoundFile(_PatchedFile(path, patches), _soundfile_name(path))


#: libsndfile's frame count for a file whose header gives no length (SF_COUNT_MAX).
_SF_COUNT_MAX = 2**63 - 1


class _SequentialSoundFile(_OwnedSoundFile):
    """Read front to back only: soundfile seeks back to where each read ended, and libFLAC cannot seek in a
    FLAC whose header gives no length ("Internal psf_fseek() failed." at its end)."""

    def seekable(self) -> bool:
        return False


def _reopen_unknown_length_flac(path: Path, handle: sf.SoundFile) -> sf.SoundFile:
    """A FLAC whose STREAMINFO holds 0 total samples ("unknown": what an encoder writing to a pipe, ``flac -``
    or ``ffmpeg ... -f flac pipe:``, leaves), decoded through once to count its frames and read as if its
    header held that count; libsndfile took it for 2^63 - 1 frames (a 13-million-year clip) and failed to
    seek at its end. A FLAC this cannot patch is refused, saying how to re-encode it."""
    handle.close()
    with open(path, "rb") as file:
        head = file.read(26)
    # "fLaC", then the STREAMINFO block (type 0, 34 bytes): its total samples are the low 36 bits of the
    # 8 bytes from offset 18 (after the block sizes, frame sizes, rate, channels and bits per sample).
    fields = int.from_bytes(head[18:26], "big") if len(head) == 26 else None
    if head[:4] != b"fLaC" or head[4] & 0x7F != 0 or head[5:8] != (34).to_bytes(3, "big") or fields is None:
        raise AudioError(
            path,
            "corrupt",
            "the FLAC header gives no length (a streamed encode); re-encode it to a file: "
            "ffmpeg -i IN.flac OUT.flac",
        )
    counting = _SequentialSoundFile(open(path, "rb"), _soundfile_name(path))
    try:
        block = np.empty((_CHECK_BLOCK_FRAMES, counting.channels), dtype=np.float32)
        frames = 0
        while got := len(counting.read(len(block), dtype="float32", always_2d=True, out=block)):
            frames += got
    finally:
        counting.close()
    if not frames:
        raise AudioError(path, "zero_length")
    patched = (fields & ~(2**36 - 1) | min(frames, 2**36 - 1)).to_bytes(8, "big")
    return _OwnedSoundFile(_PatchedFile(path, {18: patched}), _soundfile_name(path))


#: Bytes per sample of the PCM and float subtypes, to say a cut WAV's or AIFF's bytes in seconds.
_SAMPLE_BYTES = {"PCM_S8": 1, "PCM_U8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}


def _truncated_data_chunk(handle: sf.SoundFile, path: Path) -> str:
    """For WAV/AIFF: a description if the header announces more data than the file holds, else ""."""
    # libsndfile clamps the length silently and only notes "data : 64000 (should be 31978)" in its log.
    match = re.search(r"data\s*:\s*(\d+) \(should be (\d+)\)", handle.extra_info)
    if match is None:
        return ""
    announced, present = int(match.group(1)), int(match.group(2))
    # Streamed WAVs announce 0xFFFFFFFF bytes (0: `_reopen_unfinalised_wav`): unknown lengths, not truncation.
    if not present < announced < 0xFFFFFFF0:
        return ""
    # A recorder that stopped (a flat battery, a full card) leaves such a file: say what it holds in time, and
    # how to keep it, since a long take's first hours are worth transcribing.
    per_second = _SAMPLE_BYTES.get(handle.subtype, 0) * handle.channels * handle.samplerate
    if not per_second:
        return f"data chunk announces {announced} bytes, file holds {present}"
    return (
        f"data chunk announces {announced} bytes ({announced / per_second:.1f} s), file holds {present} "
        f"({present / per_second:.1f} s), as a recording cut short leaves it; to use what it holds, "
        + _conversion(path).replace("convert it to WAV or FLAC", "rewrite it")
    )


#: Containers whose header holds the exact number of samples; MP3 and Ogg headers may only estimate it.
_EXACT_LENGTH_CONTAINERS = frozenset({"WAV", "WAVEX", "RF64", "W64", "AIFF", "FLAC"})


def header_length(path: str | Path) -> tuple[int, int, bool]:
    """(frames, sampling rate, whether the frames are exact) of an audio file, read from its header (no
    decoding). ``load`` returns that many frames where they are exact (WAV, AIFF, FLAC); an MP3's or Ogg's
    header may only estimate them.

    Raises `AudioError` for the same causes as `load`.
    """
    path = _file_path(path, "header_length")
    with _open(path) as handle:
        if handle.frames <= 0:
            raise AudioError(path, "zero_length")
        truncated = _truncated_data_chunk(handle, path)
        if truncated:
            raise AudioError(path, "corrupt", f"truncated: {truncated}")
        return handle.frames, handle.samplerate, handle.format in _EXACT_LENGTH_CONTAINERS


def too_short_detail(samples: int, sample_rate: float, min_seconds: float) -> str:
    """Why `samples` at `sample_rate` (a file's own, or an array's as given) are too few where `min_seconds`
    are needed, the detail of a ``too_short`` `AudioError`: ``"1 sample at 8000 Hz (0.125 ms); the features
    need 2.9 ms"``. Under a second in milliseconds, as seconds at 3 decimals said a 10-sample file was
    "0.000 s"."""

    def duration(seconds: float) -> str:
        return f"{1000 * seconds:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"

    return (
        f"{samples} sample{'s' * (samples != 1)} at {sample_rate:g} Hz ({duration(samples / sample_rate)}); "
        f"the features need {duration(min_seconds)}"
    )


def get_duration(path: str | Path) -> float:
    """Duration of an audio file in seconds, read from its header (no decoding).

    Raises `AudioError` for the same causes as `load`.
    """
    frames, rate, _ = header_length(path)
    return frames / rate


def is_sample_rate(sr: object) -> bool:
    """Whether `sr` is a positive whole number of samples per second (an int, or a float such as 22050.0;
    not a bool, NaN, inf or a string), checked before any int(sr), whose errors name no argument."""
    return (
        not isinstance(sr, bool)
        and isinstance(sr, numbers.Real)
        and math.isfinite(sr)
        and sr > 0
        and int(sr) == sr
    )


def load(
    path: str | Path,
    sr: int | None = None,
    mono: bool = True,
    offset: float = 0.0,
    duration: float | None = None,
    res_type: str = "soxr_hq",
) -> tuple[np.ndarray, int]:
    """Read an audio file as float32: integer formats (PCM) scaled to [-1, 1], float formats as stored
    (a float WAV may hold samples beyond 1, as soundfile and librosa read it too).

    Parameters
    ----------
    path : str or Path
        WAV, FLAC, OGG, MP3 or AIFF file.
    sr : int, optional
        Target sampling rate in Hz; ``None`` keeps the file's rate.
    mono : bool
        Average the channels (before resampling, as librosa does). Mixed and resampled a block at a time
        as the file is decoded (MP3 excepted: `_WHOLE_READ_CONTAINERS`): the memory of the result, not
        of the file's samples.
    offset : float
        Start reading this many seconds into the file (seeks; the part before is not decoded for WAV,
        FLAC and AIFF).
    duration : float, optional
        Read at most this many seconds.
    res_type : str
        soxr quality: "soxr_vhq", "soxr_hq" (librosa's default), "soxr_mq", "soxr_lq" or "soxr_qq".

    Returns
    -------
    y : np.ndarray, float32, shape [samples] if mono else [channels, samples]
    sr : int
        Sampling rate of ``y`` in Hz.

    Raises
    ------
    AudioError
        Missing, empty, zero-length, corrupt or truncated, not audio, unsupported format, NaN/Inf samples,
        or an offset past the end. ``ValueError`` for invalid arguments.
    """
    path = _file_path(path, "load")
    if offset < 0 or not math.isfinite(offset):
        raise ValueError(f"offset must be a finite number of seconds >= 0, got {offset}")
    if duration is not None and (duration <= 0 or not math.isfinite(duration)):
        raise ValueError(f"duration must be a positive number of seconds or None, got {duration}")
    # Checked before int(sr), which raised its own errors naming no argument (OverflowError for inf); and
    # with repr, so the text "16000" does not read as the number refused.
    if sr is not None and not is_sample_rate(sr):
        raise ValueError(f"sr must be a positive integer or None, got {sr!r}")
    with _open(path) as handle:
        file_sr = handle.samplerate
        if handle.frames <= 0:
            raise AudioError(path, "zero_length")
        start = int(round(offset * file_sr))
        if start >= handle.frames:
            raise AudioError(
                path, "out_of_range", f"offset {offset:.3f} s, file lasts {handle.frames / file_sr:.3f} s"
            )
        frames = -1 if duration is None else int(round(duration * file_sr))
        expected = handle.frames - start if frames < 0 else min(frames, handle.frames - start)
        resampling = sr is not None and sr != file_sr
        # Mixed (and resampled) a block at a time as it is decoded, where that gives the same samples.
        streamed = (
            mono and (handle.channels > 1 or resampling) and handle.format not in _WHOLE_READ_CONTAINERS
        )
        # A header may claim more frames than the file holds (a damaged or crafted FLAC claiming 2^36): room
        # for what its bytes could plausibly decode to, grown as they turn out to decode to more.
        room = min(expected, max(_CHECK_BLOCK_FRAMES, path.stat().st_size * _PLAUSIBLE_FRAMES_PER_BYTE))
        try:
            if start:
                handle.seek(start)
            if streamed:
                y, decoded, non_finite = _read_mono(
                    handle, expected, sr if resampling else None, res_type, room
                )
            elif handle.format in _WHOLE_READ_CONTAINERS:
                data = handle.read(frames, dtype="float32", always_2d=True)
                decoded, non_finite = data.shape[0], int((~np.isfinite(data)).sum())
            else:
                data, non_finite = _read_frames(handle, expected, room)
                decoded = data.shape[0]
        except (sf.LibsndfileError, RuntimeError) as error:
            raise AudioError(path, "corrupt", str(error)) from error
        except MemoryError:
            raise _too_long(path, expected, handle) from None
        truncated = _truncated_data_chunk(handle, path)
        _check_decoded(path, decoded, expected, truncated, non_finite)
        if not streamed:
            try:
                y = data.T  # [channels, samples]
                if mono:
                    y = y.mean(axis=0) if y.shape[0] > 1 else y[0]
                y = np.ascontiguousarray(y, dtype=np.float32)
                if resampling:
                    y = resample(y, file_sr, int(sr), res_type=res_type)
            except MemoryError:
                raise _too_long(path, expected, handle) from None
    return y, int(sr) if sr is not None else file_sr


#: Frames a byte of an audio file is taken to hold at most when `load` sets room aside before decoding (low
#: bitrate Opus holds about 64; long silence in FLAC or Vorbis more, and the room grows as it decodes).
_PLAUSIBLE_FRAMES_PER_BYTE = 64


def _too_long(path: Path, frames: int, handle: sf.SoundFile) -> AudioError:
    """The error for `frames` frames of `handle` that did not fit in memory (a raw MemoryError otherwise)."""
    gib = frames * handle.channels * 4 / 2**30
    return AudioError(
        path,
        "too_long",
        f"{frames / handle.samplerate:.6g} s of {handle.channels} channel(s) at {handle.samplerate} Hz, "
        f"{gib:.3g} GiB as float32; cut it into shorter files",
    )


def _grown(buffer: np.ndarray, needed: int, limit: int) -> np.ndarray:
    """`buffer` (its first rows kept), or a copy with room for `needed` rows and at most `limit`: doubled, so
    a file that decodes to more than its room was set costs a few copies, not one per block."""
    if needed <= len(buffer):
        return buffer
    grown = np.empty((min(limit, max(needed, 2 * len(buffer))), *buffer.shape[1:]), dtype=buffer.dtype)
    grown[: len(buffer)] = buffer
    return grown


def _read_frames(handle: sf.SoundFile, frames: int, room: int) -> tuple[np.ndarray, int]:
    """(the next `frames` frames of `handle` [frames, channels], fewer where the decoder ends sooner; the
    count of non-finite samples), read a block at a time into `room` frames grown as needed: soundfile's own
    `read` sets aside every frame the header announces before it decodes one."""
    data = np.empty((room, handle.channels), dtype=np.float32)
    decoded, non_finite = 0, 0
    while decoded < frames:
        want = min(_CHECK_BLOCK_FRAMES, frames - decoded)
        data = _grown(data, decoded + want, frames)
        got = len(handle.read(want, dtype="float32", always_2d=True, out=data[decoded : decoded + want]))
        if not got:
            break
        non_finite += int((~np.isfinite(data[decoded : decoded + got])).sum())
        decoded += got
    return data[:decoded], non_finite


#: Containers `load` decodes in one read, never a block at a time: libsndfile (1.2.2) decodes an MP3 read in
#: blocks otherwise than in one read, off by up to 0.3 for a few hundred samples after each block's end (four
#: times the coding error there), whatever the block size. (WAV, AIFF, FLAC, Ogg Vorbis and Opus, CAF, W64,
#: RF64 and AU give the same samples either way.)
_WHOLE_READ_CONTAINERS = frozenset({"MP3"})


def _read_mono(
    handle: sf.SoundFile, frames: int, sr: int | None, res_type: str, room: int | None = None
) -> tuple[np.ndarray, int, int]:
    """(the mean of the channels [samples], resampled to `sr` unless it is None; the frames decoded; the count
    of non-finite samples) of the next `frames` frames of `handle` (fewer where the decoder ends sooner).

    Decoded, mixed and resampled `_CHECK_BLOCK_FRAMES` at a time, so only the result is held whole: an hour
    of 44.1 kHz stereo was read as one [samples, channels] float32 array (1.27 GB), mixed (0.64 GB more) and
    resampled (0.32 GB more). Equal to that bit for bit: each frame's mean is the same float32 sum over its
    channels, and soxr's stream gives what its one-call `resample` gives, however the input is cut.
    `room`: the frames of `handle` to set room aside for at first (default `frames`), grown as needed.
    """
    resampler = None
    length = frames  # of the result when every frame decodes (`resample`'s length rule)
    ratio = 1.0
    if sr is not None:
        if not res_type.startswith("soxr_"):
            raise ValueError(f"res_type must be one of soxr_vhq/hq/mq/lq/qq, got {res_type!r}")
        resampler = soxr.ResampleStream(handle.samplerate, sr, 1, dtype="float32", quality=res_type)
        ratio = sr / handle.samplerate
        length = math.ceil(frames * ratio)
    y = np.empty(min(length, math.ceil((frames if room is None else room) * ratio)), dtype=np.float32)
    block = np.empty((max(1, min(frames, _CHECK_BLOCK_FRAMES)), handle.channels), dtype=np.float32)
    decoded, kept, non_finite = 0, 0, 0

    def keep(samples: np.ndarray) -> None:
        nonlocal kept, y
        samples = samples[: length - kept]  # (soxr may give a sample more than the length rule keeps)
        y = _grown(y, kept + len(samples), length)
        y[kept : kept + len(samples)] = samples
        kept += len(samples)

    while decoded < frames:
        data = handle.read(min(len(block), frames - decoded), dtype="float32", always_2d=True, out=block)
        if not len(data):
            break
        non_finite += int((~np.isfinite(data)).sum())
        mixed = data[:, 0].copy() if handle.channels == 1 else data.mean(axis=1)
        keep(mixed if resampler is None else resampler.resample_chunk(mixed))
        decoded += len(data)
    if resampler is None:
        return y[:decoded], decoded, non_finite
    keep(resampler.resample_chunk(np.empty(0, dtype=np.float32), last=True))
    # A decoder that ended sooner than its header said: the length rule for the frames it gave, zeros
    # padding what soxr held back, as `resample` pads.
    expected = math.ceil(decoded * sr / handle.samplerate)
    y = _grown(y, expected, length)
    y[kept:expected] = 0.0
    return y[:expected], decoded, non_finite


def _check_decoded(path: Path, decoded: int, expected: int, truncated: str, non_finite: int) -> None:
    """Raise `AudioError` for what a decode found: no samples, fewer than announced, NaN or Inf samples."""
    if decoded == 0:
        raise AudioError(path, "corrupt", "decoder returned no samples although the header announces some")
    if truncated:
        raise AudioError(path, "corrupt", f"truncated: {truncated}")
    # Compressed streams announce a length they may not deliver when cut short; allow an MP3 frame of slack.
    if decoded < expected - max(2304, expected // 100):
        raise AudioError(
            path, "corrupt", f"truncated: header announces {expected} samples, decoded {decoded}"
        )
    if non_finite:
        raise AudioError(path, "non_finite", f"{non_finite} non-finite samples")


#: Frames `decoded_length` decodes at a time, and `load` when it mixes channels down (6 s at 44.1 kHz: a
#: few MB whatever the file's length).
_CHECK_BLOCK_FRAMES = 1 << 18


def _decoded_blocks(handle: sf.SoundFile):
    """The frames `handle` decodes, `_CHECK_BLOCK_FRAMES` at a time ([frames, channels] float32, one buffer
    reused). Not `SoundFile.blocks`: it yields every frame the header announces, and where the decoder ends
    sooner (a truncated MP3) the frames it did not give are whatever the buffer held: a truncated file counted
    as whole, and its garbage taken for samples (NaN, or a peak)."""
    block = np.empty((_CHECK_BLOCK_FRAMES, handle.channels), dtype=np.float32)
    while got := len(handle.read(len(block), dtype="float32", always_2d=True, out=block)):
        yield block[:got]


def decoded_length(path: str | Path) -> tuple[int, int]:
    """(frames, sampling rate) of an audio file decoded through, a block at a time: what `load` would
    find wrong with it raises the same `AudioError` (a truncated MP3 too), in the memory of one block rather
    than of the file (an hour of stereo at 44.1 kHz is 1.3 GB as float32). ``load(path, sr=sr)`` then returns
    ``ceil(frames * sr / rate)`` samples (`resample`'s length rule)."""
    path = _file_path(path, "decoded_length")
    with _open(path) as handle:
        if handle.frames <= 0:
            raise AudioError(path, "zero_length")
        decoded, non_finite = 0, 0
        try:
            for block in _decoded_blocks(handle):
                decoded += block.shape[0]
                non_finite += int((~np.isfinite(block)).sum())
        except (sf.LibsndfileError, RuntimeError) as error:
            raise AudioError(path, "corrupt", str(error)) from error
        expected, rate = handle.frames, handle.samplerate
        truncated = _truncated_data_chunk(handle, path)
    _check_decoded(path, decoded, expected, truncated, non_finite)
    return decoded, rate


def channel_peaks(path: str | Path) -> np.ndarray:
    """[channels] the largest absolute sample of each channel of an audio file, decoded a block at a time
    (what a mix to mono can hide: channels in opposite polarity cancel). Raises `AudioError` as `load`."""
    path = _file_path(path, "channel_peaks")
    with _open(path) as handle:
        peaks = np.zeros(handle.channels, dtype=np.float32)
        try:
            for block in _decoded_blocks(handle):
                peaks = np.maximum(peaks, np.abs(block).max(axis=0))
        except (sf.LibsndfileError, RuntimeError) as error:
            raise AudioError(path, "corrupt", str(error)) from error
    return peaks


#: Seconds of the file decoded on each side of a span `load_span` resamples: the resampler's filter sees
#: real audio there rather than the silence around a cut (at 0.05 s the span differed from the whole
#: file's by float32 rounding, ~1e-7, from 8 to 192 kHz; 0.005 s left 2e-3 when upsampling from 8 kHz).
SPAN_MARGIN_S = 0.1


#: libsndfile containers whose samples a seek reaches exactly. After a seek into an MP3 the first frames
#: decode as silence (their bit reservoir is in the frame before; libmpg123 says so on stderr), and Vorbis
#: seeks near the end of the stream landed on samples off by up to 0.5.
_EXACT_SEEK_CONTAINERS = frozenset({"WAV", "WAVEX", "RF64", "W64", "AIFF", "FLAC"})


def load_span(path: str | Path, sr: int, start: int, length: int, res_type: str = "soxr_hq") -> np.ndarray:
    """Samples ``[start, start + length)`` of ``load(path, sr=sr)[0]`` (mono), decoding only about that span.

    The span is read with a margin of `SPAN_MARGIN_S` on each side, starting on a source sample that falls on
    the output grid, and resampled: it equals the whole file's to float32 rounding (exactly, when ``sr`` is
    the file's rate). For a long file of which a short crop is used: an hour-long clip cost a whole decode
    and resample every time a 10 s crop of it was read. Only files that seek exactly (`_EXACT_SEEK_CONTAINERS`:
    WAV, AIFF, FLAC) are read in part; MP3 and Ogg files are decoded whole and cut. Fewer than `length`
    samples come back only where the file ends. Raises `AudioError` as `load` does.
    """
    path = _file_path(path, "load_span")
    # Checked as `load` checks them: sr=16000.0 (which `load` takes) failed in a slice, sr=0 with a
    # ZeroDivisionError and sr=None or "8000" with TypeErrors naming no argument; a start of 1.5 was
    # read from a fractional offset.
    if not is_sample_rate(sr):
        raise ValueError(f"sr must be a positive integer, got {sr!r}")
    for name, value in (("start", start), ("length", length)):
        whole = isinstance(value, numbers.Real) and math.isfinite(value) and int(value) == value
        if isinstance(value, bool) or not whole:
            raise ValueError(f"{name} must be a whole number of samples, got {value!r}")
    sr, start, length = int(sr), int(start), int(length)
    if start < 0 or length < 1:
        raise ValueError(f"start must be >= 0 and length >= 1, got {start} and {length}")
    with _open(path) as handle:
        file_sr, container = handle.samplerate, handle.format
    if container not in _EXACT_SEEK_CONTAINERS:
        return load(path, sr=sr, res_type=res_type)[0][start : start + length]
    if file_sr == sr:
        return load(path, offset=start / sr, duration=length / sr)[0]
    # Source frames per output grid step: a span starting on a multiple of `step` starts on an output sample.
    step = file_sr // math.gcd(file_sr, int(sr))
    margin = int(math.ceil(SPAN_MARGIN_S * file_sr))
    first = max(0, (start * file_sr // sr - margin) // step * step)
    last = math.ceil((start + length) * file_sr / sr) + margin
    y, _ = load(path, offset=first / file_sr, duration=(last - first) / file_sr)
    skip = start - first * sr // file_sr
    return np.ascontiguousarray(resample(y, file_sr, sr, res_type=res_type)[skip : skip + length])


# Suffixes `save` writes, with libsndfile's format for each (its own guess from the name, made explicit so
# that the temporary file's name does not matter).
_SAVE_FORMATS = {
    ".wav": "WAV",
    ".wave": "WAV",
    ".flac": "FLAC",
    ".ogg": "OGG",
    ".aif": "AIFF",
    ".aiff": "AIFF",
}
# Subtypes that store samples as floats: the others are integer PCM (or lossy), which libsndfile clips to
# [-1, 1] without a word.
_FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})


def save(path: str | Path, y, sr: int, subtype: str | None = None, overwrite: bool = False) -> Path:
    """Write audio ``y`` to ``path`` (a model's output: a separated stem, a prediction), atomically.

    Parameters
    ----------
    path : str or Path
        ``.wav``, ``.flac``, ``.ogg`` (Vorbis) or ``.aif``/``.aiff``; its suffix picks the format.
    y : np.ndarray or mx.array, float, shape [samples] or [channels, samples]
        As `load` returns it (``mono=False`` gives [channels, samples]); not channels-last.
    sr : int
        Sampling rate in Hz.
    subtype : str, optional
        libsndfile's subtype: ``"PCM_16"`` (the default for WAV, FLAC and AIFF), ``"PCM_24"``, ``"FLOAT"``
        (WAV, AIFF: keeps samples beyond [-1, 1]), ...
    overwrite : bool
        Replace an existing file at ``path``; without it, an existing file is a `FileExistsError`.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        A bad ``sr``, suffix, shape or subtype; NaN or Inf samples (their count and the first index); for an
        integer subtype, samples beyond [-1, 1], which it would clip without a word (normalise, clip, or
        pass ``subtype="FLOAT"``). ``TypeError`` for integer or complex samples, or a ``path`` that is none.
    """
    if not isinstance(path, (str, os.PathLike)):
        # (as `_file_path` for the readers: Path() said "expected str, bytes or os.PathLike object, not
        # BytesIO", naming neither save nor a way on)
        hint = (
            ". For audio in memory, write it with soundfile.write(file, y.T, sr, format='WAV')"
            if hasattr(path, "write")
            else ""
        )
        raise TypeError(
            "audiotrain.audio.save writes an audio file at a path (a str or pathlib.Path), "
            f"got {type(path).__name__}{hint}"
        )
    path = Path(path)
    if path.suffix.lower() not in _SAVE_FORMATS:
        raise ValueError(
            f"save: {path}: the suffix must be one of {sorted(_SAVE_FORMATS)}, got {path.suffix!r}"
        )
    if not is_sample_rate(sr):
        raise ValueError(f"save: sr must be a positive integer, got {sr!r}")
    # (here: audiotrain.features imports this module)
    from audiotrain.features._backend import CHANNELS_HINT_MAX, CHANNELS_HINT_MIN_SAMPLES, _host_copy, is_mlx

    # An mx.array through the features' host copy: a bf16-true model's output is bfloat16, which numpy
    # has not ("'bfloat16' is not a valid PEP 3118 buffer format string").
    y = _host_copy(y, "y", None) if is_mlx(y) else np.asarray(y)
    if not np.issubdtype(y.dtype, np.floating):
        raise TypeError(f"save: y must hold float samples in [-1, 1], got dtype {y.dtype}")
    if y.ndim not in (1, 2) or y.size == 0:
        raise ValueError(
            f"save: y must be [samples] or [channels, samples] with samples, got shape {y.shape}"
        )
    if y.dtype not in (np.float32, np.float64):
        y = y.astype(np.float32)  # (float16: soundfile writes float32 and float64 only, exactly here)
    # The features' rule for channels-last audio (soundfile.read's [samples, 2]), which libsndfile took
    # as thousands of channels and refused with only "Format not recognised".
    if y.ndim == 2 and y.shape[1] <= CHANNELS_HINT_MAX and y.shape[0] >= CHANNELS_HINT_MIN_SAMPLES:
        raise ValueError(
            f"save: y has shape {y.shape}: channels-last audio? y is [channels, samples] (as `load` returns "
            "it); pass y.T"
        )
    bad = ~np.isfinite(y)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"save: y holds {int(bad.sum())} NaN or Inf samples, the first at index {first}")
    fmt = _SAVE_FORMATS[path.suffix.lower()]
    kept = sf.default_subtype(fmt) if subtype is None else str(subtype).upper()
    if not sf.check_format(fmt, kept):
        known = sorted(sf.available_subtypes(fmt))
        raise ValueError(f"save: {fmt} files cannot hold subtype {subtype!r}; {fmt}'s: {known}")
    peak = float(np.abs(y).max())
    if kept not in _FLOAT_SUBTYPES and peak > 1.0:
        raise ValueError(
            f"save: y peaks at {peak:.4g}, beyond [-1, 1], which {fmt} {kept} would clip; normalise "
            f"(y / {peak:.4g}), clip (np.clip(y, -1, 1)) or keep it with subtype='FLOAT' (WAV, AIFF)"
        )
    frames = y.T if y.ndim == 2 else y  # soundfile takes [samples, channels]
    return write_given_path(
        path,
        lambda tmp: sf.write(tmp, frames, int(sr), subtype=kept, format=fmt),
        overwrite,
        writer="save",
        flag="overwrite",
        example="out.wav",
    )


_ROWS_APART_FROM = 20_000  # samples per row from which rows are resampled apart (see `resample`)
_SAMPLES_PER_GROUP = 50_000  # below this many samples a thread of its own does not pay (`resample`)


@functools.lru_cache(maxsize=1)
def _row_pool() -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(
        max_workers=usable_cores(),
        thread_name_prefix="audiotrain-resample",
    )


def resample(y: np.ndarray, orig_sr: float, target_sr: float, res_type: str = "soxr_hq") -> np.ndarray:
    """Resample along the last axis with soxr, like ``librosa.resample`` (same length rule).

    Parameters
    ----------
    y : np.ndarray, shape [..., samples]
    orig_sr, target_sr : float
        Rates in Hz.
    res_type : str
        "soxr_vhq", "soxr_hq", "soxr_mq", "soxr_lq" or "soxr_qq".

    Returns
    -------
    np.ndarray, shape [..., ceil(samples * target_sr / orig_sr)], dtype of ``y`` (float32 or float64).
    """
    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError(f"sampling rates must be positive, got orig_sr={orig_sr}, target_sr={target_sr}")
    if not res_type.startswith("soxr_"):
        raise ValueError(f"res_type must be one of soxr_vhq/hq/mq/lq/qq, got {res_type!r}")
    y = np.asarray(y)
    # Refused as librosa.resample and the features refuse them: int16 PCM came back as float32 values up to
    # 32767 (a CLAP front end then read audio 32768 times too loud), and soundfile's stereo [samples, 2]
    # was "resampled" along its channel axis into [samples, 3].
    if np.issubdtype(y.dtype, np.integer):
        raise TypeError(
            f"resample: y holds integer samples ({y.dtype}); scale to [-1, 1] first "
            f"(y / {2 ** (8 * y.dtype.itemsize - 1)}), as librosa.resample refuses them too"
        )
    from audiotrain.features._backend import CHANNELS_HINT_MAX, CHANNELS_HINT_MIN_SAMPLES

    if y.ndim >= 2 and y.shape[-1] <= CHANNELS_HINT_MAX and max(y.shape[:-1]) >= CHANNELS_HINT_MIN_SAMPLES:
        raise ValueError(
            f"resample: y has shape {y.shape}: its last axis, the one resampled, has {y.shape[-1]} samples: "
            "channels-last audio? pass y.T (channels first) or a mono mix y.mean(axis=-1)"
        )
    return resample_checked_audio(y, orig_sr, target_sr, res_type)


def resample_checked_audio(y: np.ndarray, orig_sr: float, target_sr: float, res_type: str) -> np.ndarray:
    """`resample` of audio already checked (float samples along the last axis): the CQT halves its own
    signal octave by octave, whose last axis gets short where a batch is long (a batch of 1024 clips halved
    to 8 samples is no channels-last audio)."""
    if orig_sr == target_sr:
        return y
    dtype = y.dtype if y.dtype in (np.float32, np.float64) else np.float32
    n_out = int(np.ceil(y.shape[-1] * float(target_sr) / orig_sr))
    rows = np.ascontiguousarray(y.reshape(-1, y.shape[-1]), dtype=dtype)

    def one(row: np.ndarray) -> np.ndarray:
        return soxr.resample(row, orig_sr, target_sr, quality=res_type)

    if len(rows) == 1:
        out = one(rows[0])[None]
    elif rows.shape[-1] >= _ROWS_APART_FROM:
        # Long rows one at a time, a thread per core (soxr releases the GIL): halving 32 x 5 s
        # took 8 ms instead of 12 (one thread) or 15 (interleaved) on 2 cores, bit-identical.
        out = np.stack(list(_row_pool().map(one, rows)))
    else:
        # Short rows interleaved: soxr designs its filter once per call (~40 us), which dominated
        # row-by-row calls on short rows (32 x 1723 samples: 0.4 ms against 1.3 ms). Enough of them
        # are split into one interleaved call per core (32 x 13782: 1.4 ms against 2.0 in one call).
        def interleaved(group: np.ndarray) -> np.ndarray:
            return soxr.resample(np.ascontiguousarray(group.T), orig_sr, target_sr, quality=res_type)

        n_groups = min(usable_cores(), rows.size // _SAMPLES_PER_GROUP)
        if n_groups > 1:
            groups = np.array_split(rows, n_groups)
            out = np.concatenate(list(_row_pool().map(interleaved, groups)), axis=1).T
        else:
            out = interleaved(rows).T
    out = out.reshape(*y.shape[:-1], -1)
    # soxr's length can differ by a sample from ceil(n * ratio); librosa fixes it the same way.
    if out.shape[-1] > n_out:
        out = out[..., :n_out]
    elif out.shape[-1] < n_out:
        out = np.pad(out, [(0, 0)] * (out.ndim - 1) + [(0, n_out - out.shape[-1])])
    return np.ascontiguousarray(out, dtype=dtype)


class SkipCounter:
    """Counts files skipped because of `AudioError`, by cause, and reports them.

    Thread-safe, so loader workers can share one. Keeps the first ``max_examples`` messages per cause.

    Examples
    --------
    >>> skips = SkipCounter()
    >>> for path in ["missing.wav"]:  # your audio files
    ...     loaded = skips.try_load(path, sr=22050)  # (y, sr), or None for a file it skipped
    ...     if loaded is None:
    ...         continue
    >>> print(skips.report())
    skipped 1 audio file:
      1 missing: missing.wav: file does not exist
    """

    def __init__(self, max_examples: int = 3):
        self.max_examples = max_examples
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_lock"]  # locks cannot be pickled; worker processes send their counters back
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def record(self, error: AudioError) -> None:
        """Count one skipped file."""
        with self._lock:
            self.counts[error.cause] += 1
            examples = self.examples.setdefault(error.cause, [])
            if len(examples) < self.max_examples:
                examples.append(str(error))

    def try_load(self, path: str | Path, **kwargs) -> tuple[np.ndarray, int] | None:
        """`load(path, **kwargs)`, or ``None`` (and a counted skip) when the file is bad."""
        try:
            return load(path, **kwargs)
        except AudioError as error:
            self.record(error)
            return None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __len__(self) -> int:
        return self.total

    def merge(self, other: SkipCounter) -> None:
        """Add another counter's skips (e.g. one from a worker process)."""
        with self._lock:
            self.counts.update(other.counts)
            for cause, messages in other.examples.items():
                mine = self.examples.setdefault(cause, [])
                mine.extend(messages[: max(0, self.max_examples - len(mine))])

    def to_dict(self) -> dict[str, int]:
        """Skips per cause, e.g. ``{"corrupt": 2, "missing": 1}``."""
        return dict(sorted(self.counts.items()))

    def report(self) -> str:
        """A human-readable summary: total, per cause, and example messages."""
        if not self.total:
            return "skipped 0 audio files"
        lines = [f"skipped {self.total} audio file{'s' if self.total != 1 else ''}:"]
        for cause, count in sorted(self.counts.items(), key=lambda item: (-item[1], item[0])):
            lines.append(f"  {count} {cause}: " + "; ".join(self.examples.get(cause, [])))
        return "\n".join(lines)
