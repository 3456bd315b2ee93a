"""Refusing MLX work in a forked child of a process that ran MLX.

MLX (0.32) keeps worker threads and locks that `fork` does not carry over alive: a child forked after its
parent evaluated an MLX array hangs at its first evaluation (`mx.eval` never returns), as a service makes one
with multiprocessing's 'fork' start method (Linux's default before Python 3.14) or gunicorn's --preload. A
`ChordPredictor` used or loaded in such a child says so instead of hanging.
"""

from __future__ import annotations

import os

_evaluated_in: int | None = None  # the process whose predictors ran MLX (a forked child inherits it)


def note_mlx_evaluated() -> None:
    """This process has evaluated MLX arrays (a model's weights): a child forked from now on cannot."""
    global _evaluated_in
    if _evaluated_in is None:
        _evaluated_in = os.getpid()


def refuse_in_forked_child(what: str) -> None:
    """A RuntimeError naming `what` where this process was forked from one that had run MLX."""
    if _evaluated_in is not None and _evaluated_in != os.getpid():
        raise RuntimeError(
            f"{what}: this process was forked from process {_evaluated_in} after that one ran MLX, and MLX "
            "hangs in such a child; load the predictor in each worker (multiprocessing's 'spawn' start "
            "method, get_context('spawn'), or gunicorn without --preload)"
        )
