"""Which songs a chord run trained on, stored with each checkpoint so that a ``--resume`` can refuse other ones.

Resuming is exact only on the same songs: the data loaders (and the learning-rate schedule, sized in steps per
epoch) continue from the saved position in the checkpoint's song list. A checkpoint records (`song_record`):

- the songs per split (train, val, test);
- each split's song names (a data folder's: each song's path there, as a UTF-8 locale reads it whatever the
  locale: `split_names`), in order, so that a checkpoint moved or copied out of its run folder still resumes
  on its own songs;
- a SHA-256 of each split's song names, in order, so that renamed, swapped or re-split songs are found even
  when the counts match;
- for the built-in demo songs, the settings that make their audio but not their names (seed, length, the mix
  of styles and each style's generator version): a new default mix, or a new generator version after an
  upgrade, would otherwise give other audio under the same names.

Checkpoints from before the names were recorded hold only the digests, the counts (or nothing); their run
folder's ``config.json`` holds the song names and the data settings, and is read instead
(`stored_song_record`). Where both list the names, the checkpoint's win: its training position counts in
them, while a ``config.json`` can be another run's (a checkpoint copied into its folder, a folder reused with
``--overwrite``); the resume says so (`run_folder_songs_note`).

A resumed run on a data folder goes on with its own songs where its checkpoint or its run folder's
``config.json`` lists them (`recorded_song_names`, `resumed_run_songs`): each part's songs as recorded, in
their order, and none of the songs added since, however this version splits the folder (a run from before
each song's part was kept as songs come and go resumes on its own split). Without that list (an older
checkpoint away from its run folder) the folder's split is made again and compared (`check_resume_songs`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audiotrain._file_names import portable_name
from audiotrain._text import plural
from audiotrain.datasets.chord_demo import generator_version
from audiotrain.recipes.chords.config import DEMO_STYLES_BEFORE_MIXES, ChordDataConfig
from audiotrain.recipes.chords.data import SongSplits, assign_demo_styles
from audiotrain.recipes.chords.task import CHECKPOINT_KEY, stored_settings
from audiotrain.recipes.config_cli import RUN_CONFIG_KEY
from audiotrain.recipes.split_record import (
    checked_names,
    describe_counts,
    describe_difference,
    names_digest,
    run_record_of,
    stored_names,
)
from audiotrain.train import checkpoint as ckpt

SPLITS = ("train", "val", "test")
# (A data folder's split was a shuffle of all its songs before it became a hash of each song's name, and
# songs that share an annotation file were split apart before `split_songs` kept them in one part.)
RESPLIT_HINT = (
    "another --seed, --data.val_fraction/test_fraction or --data.split_by, or a run from before each song's "
    "part was kept as songs come and go, or before songs that share an annotation file were kept in one part?"
)


def split_names(splits: SongSplits) -> dict[str, list[str]]:
    """The song names per part as records store them: as a UTF-8 locale reads them (`portable_name`), so
    that a run resumed or evaluated in another locale finds its songs."""
    return {part: [portable_name(song.name) for song in getattr(splits, part)] for part in SPLITS}


#: The data settings that, beside `demo_settings`, make a demo run's songs: how many, and which of them
#: validate (its run's settings record them).
DEMO_SPLIT_SETTINGS = ("demo_songs", "demo_test_songs", "val_fraction")


def demo_settings(data: ChordDataConfig) -> dict[str, Any]:
    """The settings that make the demo songs' audio (the names come from the counts and the mix)."""
    return {
        "demo_seed": data.demo_seed,
        "demo_seconds": float(data.demo_seconds),
        "demo_styles": list(data.demo_styles),
        "generators": {style: generator_version(style) for style in data.demo_style_shares()},
    }


def song_record(splits: SongSplits, data: ChordDataConfig | None) -> dict[str, Any]:
    """What a checkpoint stores about its songs; `data` is the data config when they are the demo songs
    (None for a data folder or splits given from Python)."""
    names = split_names(splits)
    record: dict[str, Any] = {part: len(names[part]) for part in SPLITS}
    record["names"] = names  # (the checkpoint resumes on them away from its run folder too)
    record["names_sha256"] = {part: names_digest(names[part]) for part in SPLITS}
    record["demo"] = demo_settings(data) if data is not None else None
    # (the songs the decode pass left out, silent or undecodable: a resume finds them in the folder, and they
    # were there from the start, not added since)
    record["left_out"] = [portable_name(song.name) for song in splits.left_out]
    return record


def _recorded_left_out(folder: Path) -> set[str]:
    """The song names checkpoint `folder`'s run left out as silent or undecodable (`song_record`); none for
    a checkpoint written before they were recorded, or a record edited into another form (or unreadable: the
    resume that reads it has read its state already, and says what is wrong with it)."""
    try:
        stored = (stored_settings(folder, ckpt.read_state(folder)) or {}).get("songs")
    except ckpt.CheckpointError:
        return set()
    names = stored.get("left_out") if isinstance(stored, dict) else None
    return {name for name in names if isinstance(name, str)} if isinstance(names, list) else set()


def _checkpoint_song_names(folder: Path, stored: dict[str, Any]) -> dict[str, list[str]] | None:
    """The song names per part that the song record `stored` of checkpoint `folder` holds (None in one
    written before they were); names that are not lists of strings, or that are not the ones its digests
    were made of (edited by hand), are a CheckpointError naming the field (`checked_names`)."""
    where = f"{folder / ckpt.STATE_FILE}: module_state.{CHECKPOINT_KEY}.songs"
    restart = f"start a new run from its weights with --init_from {folder}"
    return checked_names(stored, SPLITS, where, "song", restart, ckpt.CheckpointError)


def checkpoint_run_record(folder: Path) -> dict[str, Any]:
    """What a run folder's ``config.json`` says of the run's songs, as checkpoint `folder` records it:
    ``{"config": {"data": its data settings}, "songs": its song names per part}`` (no "songs" in a checkpoint
    written before they were recorded: its run folder's config.json lists them). For a checkpoint away from
    its run folder (``evaluate --test_songs_of``)."""
    state = ckpt.read_state(folder)
    stored = (stored_settings(folder, state) or {}).get("songs")
    names = _checkpoint_song_names(folder, stored) if isinstance(stored, dict) else None
    record: dict[str, Any] = {"config": {"data": (state.get(RUN_CONFIG_KEY) or {}).get("data") or {}}}
    if names is not None:
        record["songs"] = names
    return record


def _song_lists(
    folder: Path, state: dict[str, Any]
) -> tuple[Any, dict[str, list[str]] | None, dict[str, Any] | None, dict[str, list[str]] | None]:
    """(the stored song record of checkpoint `folder`, as it is, the song names it holds, its run folder's
    ``config.json``, the song names that lists); any may be None."""
    stored = (stored_settings(folder, state) or {}).get("songs")
    own = _checkpoint_song_names(folder, stored) if isinstance(stored, dict) else None
    run_record = run_record_of(folder)
    return stored, own, run_record, stored_names(run_record, "songs", SPLITS)


def stored_song_record(
    folder: Path, state: dict[str, Any]
) -> tuple[dict[str, Any] | None, dict[str, list[str]] | None]:
    """(the song record of checkpoint `folder`, whose trainer state is `state`, the song names it was trained
    on: its own, or for an older checkpoint its run folder's ``config.json`` list). The record of an older
    checkpoint is rebuilt from that ``config.json`` where it has one; either may be None."""
    stored, own, run_record, names = _song_lists(folder, state)
    if isinstance(stored, dict) and "names_sha256" in stored:
        return stored, (own if own is not None else names)
    record: dict[str, Any] = {}
    if isinstance(stored, dict):
        record = {part: int(stored.get(part, 0)) for part in SPLITS}
    elif names is not None:
        record = {part: len(names[part]) for part in SPLITS}
    if names is not None:
        record["names_sha256"] = {part: names_digest(names[part]) for part in SPLITS}
        data = (run_record.get("config") or {}).get("data") or {}
        if isinstance(data, dict) and not data.get("data_dir"):
            # Older runs: the settings their config.json has, the train style alone where it has no mix.
            record["demo"] = {
                "demo_seed": data.get("demo_seed"),
                "demo_seconds": data.get("demo_seconds"),
                "demo_styles": data.get("demo_styles", DEMO_STYLES_BEFORE_MIXES),
            }
    return (record or None), names


#: The flag that resumes a demo run whose checkpoint records no generator versions
#: (`check_resume_demo_generators`).
UNRECORDED_DEMO_FLAG = "--resume_unrecorded_demo"


#: The training style's generator version 9 changed twice after it came (40c9761, 2026-11-25 23:57) without a
#: new number (936ca6a: 40% of its songs without a bass instrument, not 30%; 8d7de88: the seed of its own
#: random stream), so a checkpoint of a build from 40c9761 to 8d7de88 that records ``train: 9`` trained on
#: other songs than today's v9 renders under the same names. Such checkpoints have no
#: ``features.bass_view_bins`` (b0e7b21, 11-26 03:29): their v9 is taken as unrecorded (a genuine v9 run of
#: a build from 8d7de88 to b0e7b21 is then refused too, and `UNRECORDED_DEMO_FLAG` resumes it).
AMBIGUOUS_TRAIN_GENERATOR = 9


def _generators_recorded(demo_before: dict[str, Any], state: dict[str, Any]) -> bool:
    """Whether the demo record `demo_before` of a checkpoint (its trainer state `state`) says which generators
    rendered its songs: it lists them, and its training style's is not the v9 of before it was settled
    (`AMBIGUOUS_TRAIN_GENERATOR`)."""
    generators = demo_before.get("generators")
    if not isinstance(generators, dict):
        return False
    features = (state.get(RUN_CONFIG_KEY) or {}).get("features")
    settled = not isinstance(features, dict) or "bass_view_bins" in features
    return settled or generators.get("train") != AMBIGUOUS_TRAIN_GENERATOR


class UnresumableDemoError(ValueError):
    """A demo run's songs that this version cannot render again (another generator since): no setting resumes
    it, so a refusal gives no flags or run record to resume with, only ``--init_from``."""


def check_resume_demo(folder: Path, state: dict[str, Any], data: ChordDataConfig, from_demo: bool) -> None:
    """The part of the song check that needs no songs, made before any demo song is rendered: refuse to resume
    checkpoint `folder` (its trainer state `state`) on a data folder when it trained on the demo songs, or the
    reverse, or on demo songs made with other settings (naming the flags that make its own). What rendered
    them is checked apart (`check_resume_demo_generators`), so that one refusal names both. Messages start
    where "cannot resume from FOLDER: " leaves off."""
    before, _ = stored_song_record(folder, state)
    if before is None:
        return
    init_from = f"--init_from {folder} in place of --resume"
    if "demo" in before and bool(before["demo"]) != from_demo:  # (records older than the field say nothing)
        counts = describe_counts({part: before.get(part) for part in SPLITS}, "songs")
        trained_on = "the demo data" if before["demo"] else "a data folder"
        where = f"the data folder {data.data_dir}" if data.data_dir else "the demo data"
        raise ValueError(
            f"it was trained on {counts} from {trained_on}, not on {where}. --resume continues a run on its "
            f"own songs; to train on these from its weights, start a new run folder with {init_from}"
        )
    demo_before = before.get("demo")
    if not (demo_before and from_demo):
        return
    demo_now = demo_settings(data)
    # The counts and the train/val split the run's settings recorded: the demo songs of another count were
    # refused only after all of them were rendered and their features computed (232 for a development
    # preset), without naming --data.demo_songs.
    recorded = (state.get(RUN_CONFIG_KEY) or {}).get("data") or {}
    demo_before = {**{k: recorded[k] for k in DEMO_SPLIT_SETTINGS if k in recorded}, **demo_before}
    demo_now = {**{k: getattr(data, k) for k in DEMO_SPLIT_SETTINGS}, **demo_now}
    if isinstance(demo_before.get("generators"), dict):
        # This version's generators of the run's own styles: another mix asked for here names its styles
        # apart (data.demo_styles, which a flag brings back), not as generators no flag brings back.
        demo_now["generators"] = {
            style: _generator_version_or_none(style) for style in demo_before["generators"]
        }
    changed = [
        k
        for k in demo_before
        if k in demo_now and not _same_setting(k, demo_before[k], demo_now[k], data.demo_songs)
    ]
    for k in changed:
        _check_recorded_setting(folder, state, k, demo_before[k], init_from)
    if changed:
        named = ", ".join(f"{_setting(k)} ({demo_before[k]!r} there, {demo_now[k]!r} here)" for k in changed)
        if "generators" in changed:
            # No flag picks a generator: `Resume with --data.demo_seed 0` was refused again, for these.
            raise UnresumableDemoError(
                f"its demo songs were made with other settings: {named}; this version's generators render "
                f"other songs under its songs' names, which no flag or --config brings back. Start a new run "
                f"folder with {init_from} to train on the songs as they are now from its weights"
            )
        flags = " ".join(f"--data.{k} {_flag_value(demo_before[k])}" for k in changed)
        raise ValueError(
            f"its demo songs were made with other settings: {named}. Resume with {flags}, or start a new run "
            f"folder with {init_from} to train on the songs as they are now from its weights"
        )


def check_resume_demo_generators(
    folder: Path, state: dict[str, Any], data: ChordDataConfig, from_demo: bool, unrecorded_ok: bool = False
) -> None:
    """Refuse to resume demo run checkpoint `folder` (its trainer state `state`) whose record has no generator
    versions (written before they were recorded), unless `unrecorded_ok` (`UNRECORDED_DEMO_FLAG`): its songs
    cannot be told from today's. Messages start where "cannot resume from FOLDER: " leaves off."""
    before, _ = stored_song_record(folder, state)
    demo_before = (before or {}).get("demo")
    if not (demo_before and from_demo):
        return
    demo_now = demo_settings(data)
    init_from = f"--init_from {folder} in place of --resume"
    if not _generators_recorded(demo_before, state) and not unrecorded_ok:
        # The songs' names and settings match, but not what rendered them: a generator changed since gives
        # other audio under the same names, and the resumed loss diverged from the run it continued.
        made = ", ".join(f"{style} v{version}" for style, version in demo_now["generators"].items())
        records = (
            "it records no demo generator versions (an older audiotrain wrote it)"
            if "generators" not in demo_before
            else f"it records demo generator train v{AMBIGUOUS_TRAIN_GENERATOR} but no "
            "features.bass_view_bins: an audiotrain of before 2026-11-26 03:29 wrote it, and until 00:40 "
            f"that day v{AMBIGUOUS_TRAIN_GENERATOR} rendered other songs than today's"
        )
        raise ValueError(
            f"{records}, and this version renders "
            f"its demo songs with generators {made}: if one changed since, the songs under the same names are "
            "others, and the run would not continue (its loss diverges). Start a new run folder with "
            f"{init_from} to train on today's songs from its weights; or pass {UNRECORDED_DEMO_FLAG} to "
            "resume it on them all the same"
        )


def unrecorded_demo_note(resume: str | Path, data: ChordDataConfig, from_demo: bool) -> str | None:
    """The note of a resume with `UNRECORDED_DEMO_FLAG` from checkpoint (or run folder) `resume`: what the flag
    does to this run, or that it changes nothing here. It resumed without a word, and its checkpoints from
    then on record today's generators for the whole run. None where `resume` cannot be read (its refusal
    says why)."""
    try:
        folder = ckpt.resolve_checkpoint(resume)
        state = ckpt.read_state(folder)
        before, _ = stored_song_record(folder, state)
    except (OSError, ValueError):  # (CheckpointError among them)
        return None
    demo_before = (before or {}).get("demo")
    if not (demo_before and from_demo):
        return f"note: {UNRECORDED_DEMO_FLAG} changes nothing here: {folder} is not a run on the demo songs"
    if _generators_recorded(demo_before, state):
        return (
            f"note: {UNRECORDED_DEMO_FLAG} changes nothing here: {folder} records the demo generator versions "
            "its songs were made with"
        )
    epoch = (state.get("progress") or {}).get("epoch")
    made = ", ".join(f"{style} v{version}" for style, version in demo_settings(data)["generators"].items())
    records = (
        "records no generator versions"
        if "generators" not in demo_before
        else "was written before v9 settled"
    )
    return (
        f"note: resuming {folder} on the demo songs as this version renders them ({UNRECORDED_DEMO_FLAG}): it "
        f"{records}, so its first {epoch} epochs may have trained on other audio under the "
        f"same names; its checkpoints from here on record generators {made}"
    )


def recorded_song_names(folder: Path, state: dict[str, Any]) -> dict[str, list[str]] | None:
    """The song names per part, in order, that checkpoint `folder` (its trainer state `state`) was trained on:
    its own list, or for an older checkpoint its run folder's ``config.json`` list where it agrees with the
    checkpoint's record (the counts, and the digests of the names where it holds them). None where there is
    no such list (an older checkpoint outside its run folder: only counts and digests), or where it is another
    run's (a config.json written over since)."""
    before, names = stored_song_record(folder, state)
    if before is None or names is None:
        return None
    digests = before.get("names_sha256") or {}
    for part in SPLITS:
        if isinstance(before.get(part), int) and before[part] != len(names[part]):
            return None
        if part in digests and digests[part] != names_digest(names[part]):
            return None
    return names


def run_folder_songs_note(folder: Path, state: dict[str, Any]) -> str:
    """A note where checkpoint `folder` (its trainer state `state`) lists its songs and its run folder's
    ``config.json`` lists others: the resume goes on with the checkpoint's, which its saved position in the
    data and the schedule count in ("" where they agree, or where either has no list)."""
    _, own, _, names = _song_lists(folder, state)
    if own is None or names is None or own == names:
        return ""
    record = folder.parent.parent / "config.json"
    ours, theirs = ({name for part in SPLITS for name in lists[part]} for lists in (own, names))
    if ours == theirs:
        differ = "the same songs in other parts or another order"
    else:
        differ = (
            f"{len(ours - theirs)} songs only the checkpoint lists, {len(theirs - ours)} only config.json"
        )
    return (
        f"note: {record} lists other songs than checkpoint {folder} was trained on ({differ}: another run's "
        "record, or one edited since); resuming on the songs the checkpoint records, the ones its saved "
        "position in the data counts in"
    )


#: The settings that split a data folder into parts: a resume keeps its run's parts (`resumed_run_songs`).
SPLIT_SETTINGS = ("val_fraction", "test_fraction", "split_by", "group_pattern")


def check_resume_split(folder: Path, state: dict[str, Any], data: ChordDataConfig) -> None:
    """Refuse to resume checkpoint `folder` (its trainer state `state`) on a data folder with other split
    settings (`SPLIT_SETTINGS`) than its run's, where it goes on with its recorded parts: they would change
    nothing, while config.json said they split the run. Messages start where "cannot resume from FOLDER: "
    leaves off."""
    if recorded_song_names(folder, state) is None:  # (split again, and compared: `check_resume_songs`)
        return
    before = (state.get(RUN_CONFIG_KEY) or {}).get("data") or {}
    changed = [k for k in SPLIT_SETTINGS if k in before and before[k] != getattr(data, k)]
    if changed:
        raise ValueError(
            "it goes on with its own songs in the parts its run split them into, which "
            + ", ".join(f"data.{k} ({before[k]!r} there, {getattr(data, k)!r} here)" for k in changed)
            + " would not change. Resume with "
            + " ".join(
                f"--data.{k} {before[k]}" if before[k] is not None else f"no --data.{k}" for k in changed
            )
            + f", or start a new run folder with --init_from {folder} in place of --resume to split the "
            "songs otherwise and train on them from its weights"
        )


def resumed_run_songs(
    splits: SongSplits, recorded: dict[str, list[str]], folder: Path, data_dir: str
) -> tuple[SongSplits, str]:
    """The songs of the run that checkpoint `folder` resumes, out of `splits` (data folder `data_dir` as
    scanned and split now): each part's songs as `recorded` (`recorded_song_names`), in that order, so that
    the data loaders and the schedule go on exactly; a song is matched by its name (its path under the data
    folder). Songs added since are left out, and listed in the splits' `data_report`. Returns the splits and
    a line saying what differs from a new run's songs ("" where nothing does). Raises ValueError, naming
    them, where recorded songs are no longer found (deleted, renamed, or left out by the scan)."""
    found = {portable_name(song.name): song for part in SPLITS for song in getattr(splits, part)}
    missing = sum(name not in found for part in SPLITS for name in recorded[part])
    if missing:
        total = sum(len(recorded[part]) for part in SPLITS)
        raise ValueError(
            # (its songs of every part: one gone may have been a validation or test song, not trained on)
            f"cannot resume from {folder}: {missing} of the {total} songs of its run "
            f"{'is' if missing == 1 else 'are'} not among the songs of the data folder {data_dir} now"
            f"{describe_difference(recorded, split_names(splits), 'songs')} (a song the scan left out is "
            f"listed above). {_songs_remedy(folder)}"
        )
    ours = {name for part in SPLITS for name in recorded[part]}
    left_out = _recorded_left_out(folder)
    added = sorted(name for name in found if name not in ours and name not in left_out)
    now = {part: set(names) & ours for part, names in split_names(splits).items()}
    resplit = any(now[part] != set(recorded[part]) for part in SPLITS)
    report = splits.data_report
    if added and report:
        report += (
            f"\n  {plural(len(added), 'song')} added since the resumed run began, not used by it "
            "(a new run or "
            "--init_from trains on them):\n    " + "\n    ".join(added)
        )
    source = f"{len(ours)} of the {splits.source}" if added else splits.source
    if left_out & set(found):  # (so that the split adds up, as the run's first line said it)
        source += f" ({len(left_out & set(found))} left out by its run as silent or undecodable)"
    if resplit and splits.parts_given:  # (a split the user wrote is theirs to keep, not ours to override)
        raise ValueError(
            f"cannot resume from {folder}: the split column of the pairs file puts songs in other parts "
            f"than its run had them{describe_difference(recorded, split_names(splits), 'songs')}. Restore "
            f"the pairs file the run began with and resume again, or start a new run folder with --init_from "
            f"{folder} in place of --resume to train on the new split from its weights"
        )
    resumed = SongSplits(
        *([found[name] for name in recorded[part]] for part in SPLITS),
        source=source,
        data_report=report,
        parts_given=splits.parts_given,
        left_out=[song for name, song in found.items() if name in left_out],
    )
    if not (resplit or added):
        return resumed, ""
    said = f"resuming on the {len(ours)} songs its run trained on"
    if resplit:
        said += ", in the parts it recorded (a new run would split them otherwise)"
    if added:
        some, it = ("1 song", "it") if len(added) == 1 else (f"{len(added)} songs", "them")
        said += (
            f"; {some} added to {data_dir} since {'is' if len(added) == 1 else 'are'} not used (a new run "
            f"folder, or --init_from {folder} in place of --resume, trains on {it})"
        )
    return resumed, said


def _songs_remedy(folder: Path) -> str:
    # Resuming continues a run on its own songs; starting from its weights on others is --init_from.
    return (
        f"To train on the songs as they are now from its weights, start a new run folder with --init_from "
        f"{folder} in place of --resume; or restore the data to the songs the checkpoint was trained on and "
        "resume again"
    )


def check_resume_songs(
    folder: Path, state: dict[str, Any], splits: SongSplits, data: ChordDataConfig, from_demo: bool
) -> None:
    """Refuse to resume checkpoint `folder` (its trainer state `state`, as `checkpoint.read_state` gives it) on
    other songs than it was trained on (see the module docstring), with a message that names what differs and
    how to go on; what needs no songs, `check_resume_demo`, was checked before. Checkpoints that record
    nothing pass."""
    before, before_names = stored_song_record(folder, state)
    if before is None:
        return
    now = song_record(splits, data if from_demo else None)
    where = f"the data folder {data.data_dir}" if data.data_dir else "the demo data"
    remedy = _songs_remedy(folder)
    counts_before = {part: before.get(part) for part in SPLITS}
    counts_now = {part: now[part] for part in SPLITS}
    if counts_before != counts_now:
        raise ValueError(
            f"cannot resume from {folder}: it was trained on {describe_counts(counts_before, 'songs')}, but {where} "
            f"now gives {describe_counts(counts_now, 'songs')}"
            f"{describe_difference(before_names, split_names(splits), 'songs', RESPLIT_HINT)}. {remedy}"
        )
    digests_before = before.get("names_sha256") or {}
    for part in SPLITS:
        if part in digests_before and digests_before[part] != now["names_sha256"][part]:
            raise ValueError(
                f"cannot resume from {folder}: its {part} songs were others than {where} now gives"
                f"{describe_difference(before_names, split_names(splits), 'songs', RESPLIT_HINT)}. {remedy}"
            )


def _generator_version_or_none(style: Any) -> int | None:
    """This version's generator of demo style `style`; None for a style it no longer has."""
    try:
        return generator_version(style)
    except (KeyError, ValueError, TypeError):
        return None


def _same_setting(key: str, before: Any, now: Any, n_songs: int) -> bool:
    """Whether a demo setting makes the same songs. A mix is the same when it gives every song the same style:
    ``train:2,studio:2`` and ``train,studio`` are one mix spelled two ways, so are ``train`` and ``train:3``."""
    if before == now:
        return True
    if key != "demo_styles":
        return False
    try:
        shares_before = ChordDataConfig(demo_styles=tuple(before)).demo_style_shares()
        shares_now = ChordDataConfig(demo_styles=tuple(now)).demo_style_shares()
    except (TypeError, ValueError):  # a malformed stored mix: not the same as a valid one
        return False
    return list(shares_before) == list(shares_now) and assign_demo_styles(
        n_songs, tuple(shares_before.values())
    ) == assign_demo_styles(n_songs, tuple(shares_now.values()))


def _check_recorded_setting(
    folder: Path, state: dict[str, Any], key: str, value: Any, init_from: str
) -> None:
    """Refuse a demo setting that checkpoint `folder` (its trainer state `state`) records as `value`, a value
    no flag can give (a hand-edited or damaged record): the advice to resume with ``--data.KEY VALUE`` would
    then be one the command line refuses (``--data.demo_seed ,`` for an empty seed). Named by its field."""
    if key == "generators":  # (no flag: checked apart, `check_resume_demo_generators`)
        return
    try:
        ChordDataConfig(**{key: tuple(value) if isinstance(value, list) else value})
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"its demo songs were made with {_setting(key)} {value!r} "
            f"({_recorded_field(folder, state, key)}), "
            f"a value no flag gives ({error}): restore that record, or start a new run folder with "
            f"{init_from} to train on the songs as they are now from its weights"
        ) from None


def _recorded_field(folder: Path, state: dict[str, Any], key: str) -> str:
    """The file and field where checkpoint `folder` (its trainer state `state`) records demo setting `key`:
    the checkpoint's run settings for the counts and the split, its song record for the rest, or for a
    checkpoint older than that record its run folder's ``config.json`` (`stored_song_record`)."""
    state_file = folder / ckpt.STATE_FILE
    if key in DEMO_SPLIT_SETTINGS and key in ((state.get(RUN_CONFIG_KEY) or {}).get("data") or {}):
        return f"{state_file}: {RUN_CONFIG_KEY}.data.{key}"
    songs = (stored_settings(folder, state) or {}).get("songs")
    if isinstance(songs, dict) and "names_sha256" in songs:
        return f"{state_file}: module_state.{CHECKPOINT_KEY}.songs.demo.{key}"
    return f"{folder.parent.parent / 'config.json'}: config.data.{key}"


def _setting(key: str) -> str:
    return "the demo generator versions" if key == "generators" else f"data.{key}"


def _flag_value(value: Any) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
