"""What every loader of a checkpoint folder checks before it trusts a file (the trainer's checkpoints and
Hugging Face CLAP folders alike): it reads nothing from outside the folder, and takes no NaN or infinite
weights. Each loader raises these as its own error type."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import mlx.core as mx


def check_inside(folder: Path, path: Path, error: type[Exception], store: Path | None = None) -> Path:
    """`path`, a file of checkpoint `folder`, unless it is a link that leads outside `store` (default: the
    folder itself; a link to the folder, such as ``checkpoints/best``, is followed first): then `error`
    naming the file, where it leads, and how to copy it in instead."""
    target = path.resolve()
    if not target.is_relative_to((store or folder).resolve()):
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
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise error(
            f"{source}: tensor {', '.join(bad[:3])}{more} holds NaN or infinite values; the checkpoint is "
            "damaged (or was saved after training diverged)"
        )


# safetensors' own limit on the JSON header (the safetensors library refuses larger ones too).
MAX_SAFETENSORS_HEADER_BYTES = 100 * 2**20
_SAFETENSORS_ITEM_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8, "C64": 8,
}  # fmt: skip


def check_safetensors_header(path: Path, error: type[Exception]) -> None:
    """Refuse, as `error` naming `path` and the tensor, a safetensors file whose header the safetensors library
    would refuse: duplicate names (the last copy would win silently), or tensors whose bytes overlap, leave
    gaps, lie outside the data section or do not match their dtype and shape (MLX's reader checks only that
    each lies inside the file, so two tensors could share bytes). Reads the header only, not the data."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            length = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
            if not 0 < length <= min(MAX_SAFETENSORS_HEADER_BYTES, size - 8):
                raise error(
                    f"{path} is not a readable safetensors file: its header length is missing or invalid"
                )
            header_bytes = handle.read(length)
    except OSError as err:
        raise error(f"{path}: cannot be read ({err})") from None

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
    spans = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            begin, end = (int(x) for x in entry["data_offsets"])
            shape = [int(n) for n in entry["shape"]]
            dtype = str(entry["dtype"])
        except (KeyError, TypeError, ValueError) as err:
            raise error(
                f"{path}: tensor {name!r} has no valid dtype, shape and data_offsets ({err})"
            ) from None
        numel = math.prod(shape)
        if dtype in _SAFETENSORS_ITEM_BYTES and end - begin != numel * _SAFETENSORS_ITEM_BYTES[dtype]:
            raise error(
                f"{path}: tensor {name!r} spans {end - begin} bytes, but a {dtype} {tuple(shape)} takes "
                f"{numel * _SAFETENSORS_ITEM_BYTES[dtype]}"
            )
        spans.append((begin, end, name))
    data_bytes = size - 8 - length
    position, previous = 0, None
    for begin, end, name in sorted(spans):
        if begin != position or end < begin:
            where = f"overlaps tensor {previous!r}" if begin < position else "leaves a gap before it"
            raise error(
                f"{path}: tensor {name!r} (bytes {begin}-{end} of the data) {where}; the file is damaged"
            )
        position, previous = end, name
    if position != data_bytes:
        raise error(
            f"{path}: its tensors take {position} bytes, but the data section holds {data_bytes}; the file is "
            "damaged (truncated, or with bytes no tensor covers)"
        )
