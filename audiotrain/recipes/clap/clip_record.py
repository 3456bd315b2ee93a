"""Which clips, with which captions, a CLAP run trained and validated on, stored with each checkpoint so that a
``--resume`` refuses other ones (see `audiotrain.recipes.split_record`).

Resuming on other clips is not exact: the loader continues from its saved position in another clip list, and
the epoch length the schedule was sized for changes. Other captions under the same names change what the
model is trained towards (and, in the offline demo, the tokenizer trained on them). A checkpoint records, per
split, the clip count, the clip names in order, a SHA-256 of those names and a SHA-256 of their captions
(`StoredInCheckpoint`); from the names the refusal names the clips that came and went, also for a checkpoint
moved or copied out of its run folder.

Checkpoints from before the names were recorded hold only the counts and digests: their run folder's
``config.json`` lists the names, and is read instead. Where both list them, the checkpoint's win: its training
position counts in them, while a ``config.json`` can be another run's (a checkpoint copied into its folder, a
folder reused with ``--overwrite``); the resume says so (`run_folder_clips_note`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audiotrain._file_names import portable_name
from audiotrain._files import read_json_file
from audiotrain._text import plural
from audiotrain.datasets.captions import CaptionedClip
from audiotrain.recipes.split_record import (
    checked_names,
    contents_digest,
    describe_counts,
    describe_difference,
    names_digest,
    run_record_of,
    stored_names,
)
from audiotrain.train import checkpoint as ckpt
from audiotrain.train.callback import Callback

#: trainer_state.json key of the record; config.json key of the names.
CLIPS_KEY = "clips"
RESPLIT_HINT = (
    "another --train.seed or --dataset.eval_fraction, or other split folders? Or a run from before the "
    "train/, test/ folders in the names of a metadata file at the top (train/a.wav) set the clips' splits, "
    "as Hugging Face AudioFolder reads them: that audiotrain held clips out at random"
)


def clip_names(splits: dict[str, list[CaptionedClip]]) -> dict[str, list[str]]:
    """{split: [clip name, ...]} in loader order, as records store them: as a UTF-8 locale reads them
    (`portable_name`), so that a run resumed in another locale finds its clips."""
    return {part: [portable_name(clip.name) for clip in clips] for part, clips in splits.items()}


def clip_record(splits: dict[str, list[CaptionedClip]]) -> dict[str, Any]:
    """What a checkpoint stores about `splits` ({"train": clips, "eval": clips}): counts and digests."""
    names = clip_names(splits)
    return {
        "counts": {part: len(clips) for part, clips in splits.items()},
        "names": names,  # (the refusal names the clips that differ away from its run folder too)
        "names_sha256": {part: names_digest(names[part]) for part in splits},
        "captions_sha256": {
            part: contents_digest([list(clip.captions) for clip in clips]) for part, clips in splits.items()
        },
    }


class StoredInCheckpoint(Callback):
    """Stores `record` under `key` in every checkpoint the Trainer writes (``trainer_state.json``): the
    `clip_record` under `CLIPS_KEY`, the model's under `audiotrain.recipes.clap.bundle.MODEL_KEY`."""

    def __init__(self, key: str, record: dict[str, Any]):
        self.key, self.record = key, record

    def on_save_checkpoint(self, trainer: Any, module: Any, checkpoint: dict[str, Any]) -> None:
        checkpoint[self.key] = self.record


def _checkpoint_clip_names(folder: Path, stored: dict[str, Any]) -> dict[str, list[str]] | None:
    """The clip names per split that the clip record `stored` of checkpoint `folder` holds (None in one
    written before they were); names that are not lists of strings, or that are not the ones its digests
    were made of (edited by hand), are a CheckpointError naming the field (`checked_names`)."""
    where = f"{folder / ckpt.STATE_FILE}: {CLIPS_KEY}"
    restart = "start a new run (without --resume)"
    parts = list(stored["counts"])
    return checked_names(stored, parts, where, "clip", restart, ckpt.CheckpointError, counts_key="counts")


def _clip_lists(
    folder: Path, state: dict[str, Any]
) -> tuple[dict[str, Any] | None, dict[str, list[str]] | None, dict[str, list[str]] | None]:
    """(the clip record of checkpoint `folder`, whose trainer state is `state`, the clip names it holds, the
    clip names its run folder's ``config.json`` lists); any may be None (a checkpoint from before the record,
    or from another recipe, has none). A record whose counts are not an object (edited by hand) is a
    CheckpointError naming the field: taken for no record, it let a resume go on on other clips unchecked."""
    stored = state.get(CLIPS_KEY)
    if stored is None:
        return None, None, None
    if not isinstance(stored, dict) or not isinstance(stored.get("counts"), dict):
        raise ckpt.CheckpointError(
            f"{folder / ckpt.STATE_FILE}: {CLIPS_KEY}.counts must be an object of clip counts per split (edited "
            "by hand?); restore the checkpoint's trainer_state.json, or start a new run (without --resume)"
        )
    own = _checkpoint_clip_names(folder, stored)
    return stored, own, stored_names(run_record_of(folder), CLIPS_KEY, list(stored["counts"]))


def run_folder_clips_note(folder: Path, state: dict[str, Any]) -> str:
    """A note where checkpoint `folder` (its trainer state `state`) lists its clips and its run folder's
    ``config.json`` lists others: the resume goes by the checkpoint's, which its saved position in the data
    and the schedule count in ("" where they agree, or where either has no list)."""
    _, own, listed = _clip_lists(folder, state)
    if own is None or listed is None or own == listed:
        return ""
    ours, theirs = ({name for names in lists.values() for name in names} for lists in (own, listed))
    if ours == theirs:
        differ = "the same clips in other splits or another order"
    else:
        differ = (
            f"{plural(len(ours - theirs), 'clip')} only the checkpoint lists, {len(theirs - ours)} only "
            "config.json"
        )
    return (
        f"note: {folder.parent.parent / 'config.json'} lists other clips than checkpoint {folder} was trained "
        f"on ({differ}: another run's record, or one edited since); resuming by the clips the checkpoint "
        "records, the ones its saved position in the data counts in"
    )


def check_resume_clips(
    folder: Path, state: dict[str, Any], splits: dict[str, list[CaptionedClip]], where: str
) -> None:
    """Refuse to resume checkpoint `folder` (its trainer state `state`) on other clips or captions than it was
    trained on, naming what differs and how to go on; `where` names the data (e.g. "the folder DIR").
    Checkpoints from before the record (or from another recipe) pass: the Trainer still checks the epoch
    length. The clips that differ are named from the checkpoint's list, or an older checkpoint's run folder's
    ``config.json``."""
    before, own, listed = _clip_lists(folder, state)
    if before is None:
        return
    now = clip_record(splits)
    remedy = (
        "Start a new run (another --out, without --resume) to train on the clips as they are now, or restore "
        "the data the checkpoint was trained on and resume again"
    )
    recorded = own if own is not None else listed
    if before["counts"] != now["counts"]:
        # (Which clips, where the checkpoint or its run lists them: a count alone sends the user searching.)
        difference = (
            ""
            if recorded is None
            else describe_difference(recorded, clip_names(splits), "clips", RESPLIT_HINT)
        )
        raise ValueError(
            f"cannot resume from {folder}: it was trained on {describe_counts(before['counts'], 'clips')}, but "
            f"{where} now gives {describe_counts(now['counts'], 'clips')}{difference}. {remedy}"
        )
    names_before = before.get("names_sha256") or {}
    captions_before = before.get("captions_sha256") or {}
    for part in splits:
        if names_before.get(part, now["names_sha256"][part]) != now["names_sha256"][part]:
            difference = describe_difference(recorded, clip_names(splits), "clips", RESPLIT_HINT)
            raise ValueError(
                f"cannot resume from {folder}: its {part} clips were others than {where} now gives{difference}. "
                f"{remedy}"
            )
    for part in splits:
        if captions_before.get(part, now["captions_sha256"][part]) != now["captions_sha256"][part]:
            raise ValueError(
                f"cannot resume from {folder}: the captions of its {part} clips have changed in {where} since "
                f"(the same {plural(len(splits[part]), 'clip')}, other captions). {remedy}"
            )


def replay_clips_note(record_file: str | Path, splits: dict[str, list[CaptionedClip]]) -> str | None:
    """A ``note:`` line where a repeat of the run recorded in `record_file` (``--config RUN/config.json``)
    trains or validates on other clips than that run did: the folder changed since (a random hold-out then
    draws its clips anew), or a split setting differs. None where they are the same or none are recorded."""
    try:
        record = read_json_file(Path(record_file), ValueError)
    except (OSError, ValueError):
        return None  # (the settings reader said what is wrong with it)
    recorded = record.get(CLIPS_KEY) if isinstance(record, dict) else None
    if not isinstance(recorded, dict) or not all(isinstance(names, list) for names in recorded.values()):
        return None  # a settings file of your own, or a record from before the clips were listed
    now = clip_names(splits)
    if all(sorted(recorded.get(part, [])) == sorted(now[part]) for part in now):
        return None
    difference = describe_difference(recorded, now, "clips", RESPLIT_HINT)
    return (
        f"note: this run's clips are not those of the run of {record_file}{difference}: the settings are "
        "repeated, the clips are the data folder's as it is now, so this is another run (its own config.json "
        "lists its clips)"
    )
