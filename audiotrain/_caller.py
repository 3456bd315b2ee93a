"""The ``stacklevel`` that attributes a warning to the user's code: the first frame outside the audiotrain
package, however deep inside it the warning was raised (a loader's hint comes from the loader itself when a
user's loop iterates it, from the Trainer's loop when `fit` does)."""

from __future__ import annotations

import os
import sys

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def user_stacklevel() -> int:
    """For ``warnings.warn(..., stacklevel=user_stacklevel())`` called in audiotrain: the level of the first
    caller outside the package (the outermost frame where every caller is audiotrain's)."""
    frame = sys._getframe(1)  # the function that warns
    level = 1
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame = frame.f_back
        level += 1
    return level
