"""What a repeat of a run (``--config RUN/config.json``) says when it would train on other songs than the run
it repeats: the data folder gained, lost or renamed songs since, or a setting that splits them differs. The
settings alone are repeated; the songs are the folder's as it is now, so the repeat is another run, and the
record it was started from names the songs the first one had."""

from __future__ import annotations

from pathlib import Path

from audiotrain.recipes.chords.data import SongSplits
from audiotrain.recipes.chords.song_record import SPLITS, split_names
from audiotrain.recipes.config_cli import load_config_data

#: How many song names a note lists of each kind before it says how many more there are.
NAMES_SHOWN = 3


def recorded_split(record_file: str | Path) -> dict[str, list[str]] | None:
    """The songs per part that the run record `record_file` names: a run's config.json (``songs``) or a
    checkpoint's trainer_state.json (its task's ``songs.names``); None where it names none (a settings file
    of your own, a cv run's record) or cannot be read (the settings reader said why already)."""
    try:
        record = load_config_data(Path(record_file))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    songs = record.get("songs")
    if songs is None:  # a checkpoint's record: the task's state holds the names
        for state in (record.get("module_state") or {}).values():
            if isinstance(state, dict) and isinstance(state.get("songs"), dict):
                songs = state["songs"].get("names")
    if not isinstance(songs, dict):
        return None
    parts = {part: songs.get(part, []) for part in SPLITS}
    listed = (isinstance(names, list) and all(isinstance(n, str) for n in names) for names in parts.values())
    if not all(listed):
        return None  # (a damaged record: nothing to compare with)
    return parts


def replay_songs_note(record_file: str | Path, splits: SongSplits) -> str | None:
    """A ``note:`` line where the run `splits` describes would train, validate or test on other songs than
    the run recorded in `record_file` did (None where they are the same, or the record names none)."""
    recorded = recorded_split(record_file)
    if recorded is None:
        return None
    now = split_names(splits)
    if all(sorted(now[part]) == sorted(recorded[part]) for part in SPLITS):
        return None
    part_then = {name: part for part in SPLITS for name in recorded[part]}
    part_now = {name: part for part in SPLITS for name in now[part]}
    added = sorted(set(part_now) - set(part_then))
    removed = sorted(set(part_then) - set(part_now))
    moved = sorted(n for n in set(part_now) & set(part_then) if part_now[n] != part_then[n])
    changes = [
        _listed(f"{len(added)} song{'s' * (len(added) != 1)} it did not have", added, part_now),
        _listed(f"{len(removed)} of its songs missing", removed, part_then),
        _listed(
            f"{len(moved)} song{'s' * (len(moved) != 1)} in another part",
            moved,
            {n: f"{part_then[n]} there, {part_now[n]} here" for n in moved},
        ),
    ]
    return (
        f"note: this run's songs are not those of the run of {record_file}: "
        + "; ".join(change for change in changes if change)
        + ". The settings are repeated, the songs are the data folder's as it is now, so this is another run "
        "(its own config.json lists its songs)"
    )


def _listed(what: str, names: list[str], where: dict[str, str]) -> str:
    """`what` with the first `NAMES_SHOWN` of `names` and where each is (its part), '' for no names."""
    if not names:
        return ""
    shown = ", ".join(f"{name} ({where[name]})" for name in names[:NAMES_SHOWN])
    more = f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else ""
    return f"{what}: {shown}{more}"
