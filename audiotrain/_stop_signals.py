"""The signals audiotrain takes as a request to stop (`audiotrain.train.interrupt`), those this platform has:
SIGINT (Ctrl-C), SIGTERM (``timeout``, ``kill``, a cluster's time limit) and SIGUSR1 (``sbatch --signal``, and
a launched rank's stand-in for Ctrl-C). Kept apart from `interrupt`, which loads MLX, so that a DataLoader's
worker process can ignore them without loading it."""

from __future__ import annotations

import signal

STOP_SIGNALS: tuple[int, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGUSR1") if hasattr(signal, name)
)
