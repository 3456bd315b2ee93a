"""Pieces of user-facing messages that many of them share."""

from __future__ import annotations

from collections.abc import Sequence


def listed(items: Sequence[object], shown: int = 3, sep: str = ", ") -> str:
    """The first `shown` of `items` joined with `sep`, then " and <n> more" for the rest: a message names a
    few and counts the others, staying one readable line however many there are."""
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return sep.join(str(item) for item in items[:shown]) + more
