"""`TQDMProgressBar`: Lightning's name and arguments for audiotrain's `ProgressBar`."""

from __future__ import annotations

import numbers

from audiotrain.train.progress import ProgressBar


class TQDMProgressBar(ProgressBar):
    """Lightning's `TQDMProgressBar(refresh_rate=1, process_position=0, leave=False)`: audiotrain's
    `ProgressBar` (a tqdm bar per training epoch, a validation bar under it, plain lines in a log) under
    Lightning's name, so that ``callbacks=[TQDMProgressBar(refresh_rate=10)]`` works as it does there.

    `refresh_rate`: the bar's count and numbers are updated every `refresh_rate` batches. Lightning's 0
    (no bar) is refused: ``Trainer(enable_progress_bar=False)`` turns the bar off. `process_position`: the line the
    bars start at (Lightning's, for several trainers drawing bars in one terminal); the validation bar goes
    one line under the training one. `leave`: keep each finished epoch's bar on screen (ProgressBar's
    behaviour); False, Lightning's default, clears it when it closes (Lightning reuses one bar across
    epochs instead: the last epoch's then stays). ProgressBar's `plain` (lines instead of bars) is chosen as
    there: when stderr is not a terminal. One progress bar at most, as in Lightning: a second (this or a
    `ProgressBar`) is refused when `fit` (or `validate`, ...) starts, naming both.
    """

    def __init__(self, refresh_rate: int = 1, process_position: int = 0, leave: bool = False):
        if (
            isinstance(refresh_rate, numbers.Integral)
            and not isinstance(refresh_rate, bool)
            and refresh_rate == 0
        ):
            raise ValueError(
                "TQDMProgressBar(refresh_rate=0): Lightning's way to hide the bar is not taken here; pass "
                "Trainer(enable_progress_bar=False) to turn the progress bar off, or a refresh_rate >= 1"
            )
        if not isinstance(refresh_rate, int) or isinstance(refresh_rate, bool) or refresh_rate < 1:
            raise ValueError(f"TQDMProgressBar(refresh_rate={refresh_rate!r}): expected an int >= 1")
        if (
            not isinstance(process_position, int)
            or isinstance(process_position, bool)
            or process_position < 0
        ):
            raise ValueError(f"TQDMProgressBar(process_position={process_position!r}): expected an int >= 0")
        if not isinstance(leave, bool):
            raise ValueError(f"TQDMProgressBar(leave={leave!r}): expected True or False")
        super().__init__(refresh_rate=refresh_rate)
        self._position, self._leave = process_position, leave

    @property
    def process_position(self) -> int:
        return self._position
