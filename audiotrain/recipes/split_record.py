"""Which examples (songs, clips) a run trained on, per split, so that a ``--resume`` can refuse other ones.

Resuming is exact only on the same data: the data loaders, and a learning-rate schedule sized in steps per
epoch, continue from the saved position in the checkpoint's example list. A record holds, per split, the
count and a SHA-256 of the names in order (renamed, swapped or re-split examples are found even when the
counts match), and optionally a SHA-256 of each split's contents (a caption edited in place). The names
themselves are kept in the run folder's ``config.json`` and, since both recipes record them there too, in
each checkpoint (so that one moved out of its run folder has them): `describe_difference` finds which ones
came and went. Names are stored and compared as a UTF-8 locale reads them
(`audiotrain._file_names.portable_name`), so that a record written in one locale is read right in another.

The chord recipe adds what makes its demo songs (`audiotrain.recipes.chords.song_record`); the CLAP recipe
records its clips and their captions (`audiotrain.recipes.clap.clip_record`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from audiotrain._file_names import stored_name
from audiotrain._files import check_regular_file, read_json_file
from audiotrain._text import listed

__all__ = [
    "contents_digest",
    "describe_counts",
    "describe_difference",
    "names_digest",
    "run_record_of",
    "stored_names",
]


def names_digest(names: Sequence[str]) -> str:
    """SHA-256 of `names` (`audiotrain._file_names.portable_name`'s form), in order. A surrogate escape (a
    byte that is not UTF-8; a name of a record written in an ASCII locale) is hashed as the byte it stands
    for: the same digest as the name as a UTF-8 locale reads it."""
    return hashlib.sha256("\n".join(names).encode("utf-8", "surrogateescape")).hexdigest()


def checked_names(
    stored: dict[str, Any],
    parts: Sequence[str],
    record: str,
    what: str,
    restart: str,
    error: type[Exception],
    counts_key: str | None = None,
) -> dict[str, list[str]] | None:
    """The names per part (`parts`) a checkpoint's split record `stored` holds, or None in one written before
    it held them. The record is checked first, whatever its age: its counts (under `counts_key`, or beside the
    names where None) whole numbers, and its ``names_sha256`` digests strings. Names that are not lists of
    strings, or not the lists its digests were made of, or not as many as its counts say (edited by hand), are
    `error` naming the field in `record` (``FILE: key``, the record's place); `what`: what the names are
    ("song", "clip"); `restart`: how to start a new run instead."""
    by_hand = f"(edited by hand?); restore the checkpoint's trainer_state.json, or {restart}"
    counts_at = stored.get(counts_key) if counts_key else stored
    counts_at = counts_at if isinstance(counts_at, dict) else {}
    counts_where = f"{record}.{counts_key}" if counts_key else record
    for part in parts:
        count = counts_at.get(part)
        if part in counts_at and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
            raise error(f"{counts_where}.{part} is {count!r}, not a number of {what}s {by_hand}")
    digests = stored.get("names_sha256")
    if digests is not None and not (
        isinstance(digests, dict) and all(isinstance(d, str) for d in digests.values())
    ):
        raise error(
            f"{record}.names_sha256 must be an object of SHA-256 digests (strings) per part {by_hand}"
        )
    if "names" not in stored:
        return None
    names = stored["names"]
    if not (
        isinstance(names, dict)
        and all(isinstance(names.get(p), list) and all(isinstance(n, str) for n in names[p]) for p in parts)
    ):
        raise error(
            f"{record}.names must be an object of the {what} names per part ({', '.join(parts)}: lists of "
            "strings)"
        )
    for part in parts:
        if digests and part in digests and digests[part] != names_digest(names[part]):
            raise error(
                f"{record}.names.{part} is not the list its names_sha256.{part} was made of {by_hand}"
            )
        if part in counts_at and counts_at[part] != len(names[part]):
            raise error(
                f"{counts_where}.{part} is {counts_at[part]}, but its names.{part} lists "
                f"{len(names[part])} {what}{'s' * (len(names[part]) != 1)} {by_hand}"
            )
    return {p: [stored_name(n) for n in names[p]] for p in parts}


def contents_digest(items: Sequence[Any]) -> str:
    """SHA-256 of JSON-serialisable `items` (e.g. each clip's captions), in order."""
    return hashlib.sha256(json.dumps(list(items), ensure_ascii=False).encode()).hexdigest()


def describe_counts(counts: dict[str, Any], unit: str) -> str:
    """``"10 clips (train 6, eval 4)"``."""
    total = sum(int(c or 0) for c in counts.values())
    return f"{total} {unit} (" + ", ".join(f"{part} {count}" for part, count in counts.items()) + ")"


def describe_difference(
    before: dict[str, list[str]] | None, now: dict[str, list[str]], unit: str, resplit_hint: str = ""
) -> str:
    """What differs between the names per split of the checkpoint's run (`before`, from its ``config.json``)
    and now, as a parenthesised clause: the names gone and new, or a re-split, or a new order."""
    if before is None:
        return " (its run folder's config.json, which lists them, was not found)"
    everything_before = {name for names in before.values() for name in names}
    everything_now = {name for names in now.values() for name in names}
    gone, new = sorted(everything_before - everything_now), sorted(everything_now - everything_before)
    if gone or new:
        return f" (gone since: {_some(gone)}; new: {_some(new)})"
    if any(set(before.get(part, [])) != set(now[part]) for part in now):
        return f" (the same {unit}, split otherwise{': ' + resplit_hint if resplit_hint else ''})"
    return f" (the same {unit} in another order)"


def run_record_of(checkpoint_folder: Path) -> dict[str, Any] | None:
    """The ``config.json`` of the run folder that holds checkpoint `checkpoint_folder` (RUN/checkpoints/NAME),
    if it has one; a folder elsewhere has none (a config.json beside it is not that run's). One that is
    there but not a regular file (a FIFO would wait forever) is a ValueError naming it."""
    if checkpoint_folder.parent.name != "checkpoints":
        return None
    path = checkpoint_folder.parent.parent / "config.json"
    if not path.exists():
        return None
    check_regular_file(path, ValueError)
    try:
        record = read_json_file(path, ValueError)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def stored_names(
    record: dict[str, Any] | None, key: str, parts: Sequence[str]
) -> dict[str, list[str]] | None:
    """``record[key]`` when it is {part: [name, ...]} for every part in `parts`, else None; the names as
    `audiotrain._file_names.stored_name` reads them."""
    names = record.get(key) if record else None
    if isinstance(names, dict) and all(isinstance(names.get(p), list) for p in parts):
        return {p: [stored_name(str(n)) for n in names[p]] for p in parts}
    return None


def _some(names: list[str], shown: int = 5) -> str:
    if not names:
        return "none"
    return listed([repr(n) for n in names], shown)
