"""Which clips, with which captions, a CLAP run trained and validated on, stored with each checkpoint so that a
``--resume`` refuses other ones (see `audiotrain.recipes.split_record`).

Resuming on other clips is not exact: the loader continues from its saved position in another clip list, and
the epoch length the schedule was sized for changes. Other captions under the same names change what the
model is trained towards (and, in the offline demo, the tokenizer trained on them). A checkpoint records, per
split, the clip count, a SHA-256 of the clip names and a SHA-256 of their captions (`StoredInCheckpoint`); the
run folder's ``config.json`` lists the names, from which the refusal names the clips that came and went.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audiotrain.datasets.captions import CaptionedClip
from audiotrain.recipes.split_record import (
    contents_digest,
    describe_counts,
    describe_difference,
    names_digest,
    run_record_of,
    stored_names,
)
from audiotrain.train.callback import Callback

#: trainer_state.json key of the record; config.json key of the names.
CLIPS_KEY = "clips"
RESPLIT_HINT = "another --train.seed or --dataset.eval_fraction, or other split folders?"


def clip_names(splits: dict[str, list[CaptionedClip]]) -> dict[str, list[str]]:
    """{split: [clip name, ...]} in loader order."""
    return {part: [clip.name for clip in clips] for part, clips in splits.items()}


def clip_record(splits: dict[str, list[CaptionedClip]]) -> dict[str, Any]:
    """What a checkpoint stores about `splits` ({"train": clips, "eval": clips}): counts and digests."""
    names = clip_names(splits)
    return {
        "counts": {part: len(clips) for part, clips in splits.items()},
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


def check_resume_clips(
    folder: Path, state: dict[str, Any], splits: dict[str, list[CaptionedClip]], where: str
) -> None:
    """Refuse to resume checkpoint `folder` (its trainer state `state`) on other clips or captions than it was
    trained on, naming what differs and how to go on; `where` names the data (e.g. "the folder DIR").
    Checkpoints from before the record (or from another recipe) pass: the Trainer still checks the epoch
    length."""
    before = state.get(CLIPS_KEY)
    if not isinstance(before, dict) or not isinstance(before.get("counts"), dict):
        return
    now = clip_record(splits)
    remedy = (
        "Start a new run (another --out, without --resume) to train on the clips as they are now, or restore "
        "the data the checkpoint was trained on and resume again"
    )
    if before["counts"] != now["counts"]:
        raise ValueError(
            f"cannot resume from {folder}: it was trained on {describe_counts(before['counts'], 'clips')}, but "
            f"{where} now gives {describe_counts(now['counts'], 'clips')}. {remedy}"
        )
    names_before = before.get("names_sha256") or {}
    captions_before = before.get("captions_sha256") or {}
    for part in splits:
        if names_before.get(part, now["names_sha256"][part]) != now["names_sha256"][part]:
            listed = stored_names(run_record_of(folder), CLIPS_KEY, list(splits))
            difference = describe_difference(listed, clip_names(splits), "clips", RESPLIT_HINT)
            raise ValueError(
                f"cannot resume from {folder}: its {part} clips were others than {where} now gives{difference}. "
                f"{remedy}"
            )
    for part in splits:
        if captions_before.get(part, now["captions_sha256"][part]) != now["captions_sha256"][part]:
            raise ValueError(
                f"cannot resume from {folder}: the captions of its {part} clips have changed in {where} since "
                f"(the same {len(splits[part])} clips, other captions). {remedy}"
            )
