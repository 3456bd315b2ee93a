"""Pieces of user-facing messages that many of them share."""

from __future__ import annotations

from collections.abc import Sequence


def listed(items: Sequence[object], shown: int = 3) -> str:
    """The first `shown` of `items` joined with ", ", then " and <n> more" for the rest: a message names a few
    and counts the others, staying one readable line however many there are."""
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(str(item) for item in items[:shown]) + more
