"""What every loader of a checkpoint folder checks before it trusts a file (the trainer's checkpoints and
Hugging Face CLAP folders alike): it reads nothing from outside the folder, and takes no NaN or infinite
weights. Each loader raises these as its own error type."""

from __future__ import annotations

import bisect
import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from audiotrain._files import dangling_link
from audiotrain._lfs import file_pointer_text
from audiotrain._text import listed

import mlx.core as mx


def check_inside(folder: Path, path: Path, error: type[Exception], store: Path | None = None) -> Path:
    """`path`, a file of checkpoint `folder`, unless it is a link that leads outside `store` (default: the
    folder itself; a link to the folder, such as ``checkpoints/best``, is followed first): then `error`
    naming the file, where it leads, and how to copy it in instead."""
    target = path.resolve()
    if not target.is_relative_to((store or folder).resolve()):
        if broken := dangling_link(path):  # (copying it in, the way out below, cannot be done)
            raise error(f"{path}: {broken}")
        raise error(
            f"{path} leads outside {folder} (a link to {target}); loading reads nothing outside the "
            "checkpoint folder: copy the file into it (cp -L) instead of linking it"
        )
    return path


def check_finite(arrays: Mapping[str, mx.array], source: Path, error: type[Exception]) -> None:
    """Refuse NaN or infinite weights now, as `error` naming `source` and the tensors: they would surface
    only as NaN outputs (or a NaN loss) after the data has been read, naming nothing."""
    floating = {n: t for n, t in arrays.items() if mx.issubdtype(t.dtype, mx.floating)}
    finite = {n: mx.isfinite(t).all() for n, t in floating.items()}
    mx.eval(list(finite.values()))  # one sync for every tensor
    bad = sorted(n for n, ok in finite.items() if not ok.item())
    if bad:
        raise error(
            f"{source}: tensor {listed(bad)} holds NaN or infinite values; the checkpoint is "
            "damaged (or was saved after training diverged)"
        )


# safetensors' own limit on the JSON header (the safetensors library refuses larger ones too).
MAX_SAFETENSORS_HEADER_BYTES = 100 * 2**20
_SAFETENSORS_ITEM_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8, "C64": 8,
}  # fmt: skip
# The dtype MLX's reader gives each safetensors dtype (it gives float8 bytes as uint8).
_SAFETENSORS_MLX_DTYPES = {
    "BOOL": mx.bool_, "U8": mx.uint8, "I8": mx.int8, "F8_E5M2": mx.uint8, "F8_E4M3": mx.uint8,
    "I16": mx.int16, "U16": mx.uint16, "F16": mx.float16, "BF16": mx.bfloat16, "I32": mx.int32,
    "U32": mx.uint32, "F32": mx.float32, "F64": mx.float64, "I64": mx.int64, "U64": mx.uint64,
    "C64": mx.complex64,
}  # fmt: skip


@dataclass(frozen=True)
class SafetensorsEntry:
    """One tensor as a safetensors header describes it: enough to compare it with a model (its `shape` and
    `dtype`, as an array's) before any of its data is read."""

    name: str  # in the file
    safetensors_dtype: str
    shape: tuple[int, ...]
    begin: int  # its bytes: begin:end of the file
    end: int

    @property
    def dtype(self) -> mx.Dtype | None:
        """As MLX reads it; None for a dtype MLX does not know (reading it fails, naming the file)."""
        return _SAFETENSORS_MLX_DTYPES.get(self.safetensors_dtype)


#: The longest dimension of an MLX array (its shape is int32).
_MLX_DIMENSION_MAX = 2**31 - 1


def check_safetensors_header(path: Path, error: type[Exception]) -> dict[str, SafetensorsEntry]:
    """The tensors of safetensors file `path` by name, from its header alone (no tensor data is read).
    Refuses, as `error` naming `path` and the tensor, a header the safetensors library would refuse:
    duplicate names (the last copy would win silently), or tensors whose bytes overlap, leave gaps, lie
    outside the data section or do not match their dtype and shape (MLX's reader checks only that each lies
    inside the file, so two tensors could share bytes). An empty file and one cut short (shorter than its
    header or its tensors: an interrupted copy or download) are said as such, with the fix."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            header_bytes = b""
            length = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
            if 0 < length <= min(MAX_SAFETENSORS_HEADER_BYTES, size - 8):
                header_bytes = handle.read(length)
    except OSError as err:
        raise error(f"{path}: cannot be read ({err})") from None
    # Raised outside the try: `error` may be an OSError itself (CLAP's CheckpointError), which the except
    # above would wrap in a second copy of the path.
    # An empty file or one cut short (an interrupted copy or download) is said as such: the user's fix is to
    # copy it again, not to look for another format.
    if size == 0:
        raise error(f"{path}: the file is empty (0 bytes); copy or download it again")
    pointer = file_pointer_text(path)  # (a model repository cloned without Git LFS)
    if pointer:
        raise error(f"{path}: {pointer}")
    if len(prefix) < 8 or size - 8 < length <= MAX_SAFETENSORS_HEADER_BYTES:
        header = "its safetensors header" if len(prefix) < 8 else f"its {length}-byte header"
        raise error(
            f"{path} is cut short ({size} bytes, less than {header}): an interrupted copy or "
            "download? copy or download it again"
        )
    if not header_bytes:
        raise error(f"{path} is not a readable safetensors file: its header length is missing or invalid")

    def no_duplicates(pairs: list[tuple[str, object]]) -> dict:
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise error(f"{path}: tensor {name!r} is listed twice in the safetensors header")
            seen.add(name)
        return dict(pairs)

    try:
        header = json.loads(header_bytes, object_pairs_hook=no_duplicates)
    except (ValueError, RecursionError) as err:
        raise error(f"{path} is not a readable safetensors file: its header is not JSON ({err})") from None
    if not isinstance(header, dict):
        raise error(f"{path} is not a readable safetensors file: its header is not a JSON object")
    data_start = 8 + length
    entries: dict[str, SafetensorsEntry] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            begin, end = (int(x) for x in entry["data_offsets"])
            shape = [int(n) for n in entry["shape"]]
            dtype = str(entry["dtype"])
        except (KeyError, TypeError, ValueError, OverflowError) as err:  # (OverflowError: 1e999, infinite)
            raise error(
                f"{path}: tensor {name!r} has no valid dtype, shape and data_offsets ({err})"
            ) from None
        if any(n < 0 for n in shape):
            raise error(f"{path}: tensor {name!r} has a negative dimension in its shape {_shape_text(shape)}")
        if any(n > _MLX_DIMENSION_MAX for n in shape):  # (MLX wrapped 2**31 + 1 to -2**31 + 1, 2**32 to 0)
            raise error(
                f"{path}: tensor {name!r} has a dimension of 2**31 or more in its shape "
                f"{_shape_text(shape)}, more than an MLX array holds"
            )
        numel = math.prod(shape)
        if dtype in _SAFETENSORS_ITEM_BYTES and end - begin != numel * _SAFETENSORS_ITEM_BYTES[dtype]:
            takes = numel * _SAFETENSORS_ITEM_BYTES[dtype]
            # (a product of many huge dimensions can pass 4300 digits, which str() refuses)
            takes_text = f"{takes}" if abs(takes) <= size else f"more than the whole file ({size} bytes)"
            raise error(
                f"{path}: tensor {name!r} spans {end - begin} bytes, but a {dtype} of shape "
                f"{_shape_text(shape)} takes {takes_text}"
            )
        entries[name] = SafetensorsEntry(name, dtype, tuple(shape), data_start + begin, data_start + end)
    data_bytes = size - data_start
    position, previous = 0, None
    for begin, end, name in sorted(
        (e.begin - data_start, e.end - data_start, e.name) for e in entries.values()
    ):
        if begin != position or end < begin:
            where = f"overlaps tensor {previous!r}" if begin < position else "leaves a gap before it"
            raise error(
                f"{path}: tensor {name!r} (bytes {begin}-{end} of the data) {where}; the file is damaged"
            )
        position, previous = end, name
    if position > data_bytes:  # (the header is whole, the tensors' bytes are not)
        raise error(
            f"{path} is cut short: its tensors take {position} bytes, but the data section holds "
            f"{data_bytes} "
            "(an interrupted copy or download); copy or download it again"
        )
    if position != data_bytes:
        raise error(
            f"{path}: its tensors take {position} bytes, but the data section holds {data_bytes}; the file is "
            "damaged (bytes no tensor covers)"
        )
    return entries


def _shape_text(shape: list[int]) -> str:
    """`shape` as a tuple, or its first dimensions and a count where it is long."""
    if len(shape) <= 8:
        return str(tuple(shape))
    return f"({', '.join(str(n) for n in shape[:8])}, ... {len(shape)} dimensions)"


def read_safetensors(
    path: Path, entries: Mapping[str, SafetensorsEntry], error: type[Exception], finite: bool = True
) -> dict[str, mx.array]:
    """The tensors `entries` names (from `check_safetensors_header(path)`, under any keys: the result takes
    them), read from `path` and no other tensor of it: a file's extra or refused tensors cost no memory.
    With `finite`, NaN or infinite values are refused (see `check_finite`)."""
    try:
        with open(path, "rb") as handle:  # (opened by Python: MLX cannot open every name Python can)
            arrays = _load_opened(handle, list(entries.values()))
    except OSError as err:
        raise error(f"{path}: cannot be read ({err})") from None
    except Exception as err:  # MLX's RuntimeError/ValueError: a dtype it does not know, a file changed since
        raise error(f"{path} is not a readable safetensors file: {err}") from err
    if finite:
        check_finite(arrays, path, error)
    return {key: arrays[entry.name] for key, entry in entries.items()}


def _load_opened(handle: io.BufferedReader, entries: list[SafetensorsEntry]) -> dict[str, mx.array]:
    """The safetensors file open in `handle`, loaded by MLX through its ``/dev/fd`` name where there is one,
    lazily: a tensor is read when evaluated, so the ones not taken cost nothing. A Python file object given
    to MLX (`_SubsetFile`, the fallback) is released by MLX's own threads, which take the GIL for it, and one
    that did so while Python was exiting aborted the process ("terminate called without an active exception",
    status 134) after a command that loaded a checkpoint ended, even with its error and status 2."""
    by_descriptor = Path(f"/dev/fd/{handle.fileno()}")
    if by_descriptor.exists():
        try:
            loaded = mx.load(str(by_descriptor), format="safetensors")
            return {entry.name: loaded[entry.name] for entry in entries}
        except (RuntimeError, ValueError, KeyError):
            pass  # (a tensor not taken that MLX cannot load, such as an unknown dtype: only the taken ones)
    return mx.load(_SubsetFile(handle, entries), format="safetensors")


class _SubsetFile(io.RawIOBase):
    """A safetensors file of only some tensors of an open one, for MLX's reader: a header of those tensors,
    then each one's bytes read (when MLX reads them) straight from their place in the original file, into
    the array's own memory. So only those tensors are read, and each once."""

    def __init__(self, handle: io.BufferedReader, entries: list[SafetensorsEntry]) -> None:
        super().__init__()
        header, start = {}, 0
        self._pieces: list[tuple[int, int, int]] = []  # (start here, start in the file, length)
        for entry in entries:
            length = entry.end - entry.begin
            offsets = [start, start + length]
            header[entry.name] = {
                "dtype": entry.safetensors_dtype,
                "shape": entry.shape,
                "data_offsets": offsets,
            }
            self._pieces.append((start, entry.begin, length))
            start += length
        text = json.dumps(header).encode()
        self._prefix = len(text).to_bytes(8, "little") + text
        self._pieces = [(len(self._prefix) + at, begin, length) for at, begin, length in self._pieces]
        self._starts = [at for at, _, _ in self._pieces]
        self._size = len(self._prefix) + start
        self._handle, self._position = handle, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = base + offset
        return self._position

    def readinto(self, buffer) -> int:
        view, done = memoryview(buffer).cast("B"), 0
        while done < len(view) and self._position < self._size:
            position = self._position
            if position < len(self._prefix):
                part = self._prefix[position : position + len(view) - done]
                view[done : done + len(part)] = part
                count = len(part)
            else:
                at, begin, length = self._pieces[bisect.bisect_right(self._starts, position) - 1]
                self._handle.seek(begin + position - at)
                count = self._handle.readinto(
                    view[done : done + min(len(view) - done, at + length - position)]
                )
                if not count:
                    break  # the file is shorter than its header said (changed since): MLX reports it
            done += count
            self._position += count
        return done
