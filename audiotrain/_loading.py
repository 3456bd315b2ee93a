"""What every loader of a checkpoint folder checks before it trusts a file (the trainer's checkpoints and
Hugging Face CLAP folders alike): it reads nothing from outside the folder, and takes no NaN or infinite
weights. Each loader raises these as its own error type."""

from __future__ import annotations

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
