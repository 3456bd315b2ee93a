"""The signals audiotrain takes as a request to stop (`audiotrain.train.interrupt`), those this platform has:
SIGINT (Ctrl-C), SIGTERM (``timeout``, ``kill``, a cluster's time limit) and SIGUSR1 (``sbatch --signal``, and
a launched rank's stand-in for Ctrl-C). Kept apart from `interrupt`, which loads MLX, so that a DataLoader's
worker process can ignore them without loading it."""

from __future__ import annotations

import os
import signal

STOP_SIGNALS: tuple[int, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGUSR1") if hasattr(signal, name)
)

#: Set in each rank of a job `audiotrain.distributed.local` launched: the signal (``SIGUSR1``) that stands for
#: the user's Ctrl-C there. Here, where a recipe command reads it as it starts, before MLX loads.
STOP_SIGNAL_ENV = "AUDIOTRAIN_STOP_SIGNAL"


def usr1_is_a_stand_in() -> bool:
    """Whether SIGUSR1 stands for Ctrl-C in this process (a launched rank), rather than for itself."""
    return os.environ.get(STOP_SIGNAL_ENV) == "SIGUSR1"
