"""The CLAP recipe's data: which clips train and which evaluate, the loaders that batch them, and the
zero-shot class list (``--dataset.zero_shot_labels``)."""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

from audiotrain._text import plural
from audiotrain.data import DataLoader
from audiotrain.data.sampler import shard_padding
from audiotrain.datasets._text import read_utf8_text
from audiotrain.datasets.captions import (
    CaptionDataset,
    CaptionFolder,
    CaptionFolderError,
    holdout_split,
    normalise_split,
    scan_caption_folder,
    with_cropped_flags,
)
from audiotrain.distributed import collectives
from audiotrain.recipes.clap.config import ClapDatasetConfig, ClapRecipeConfig

import numpy as np

__all__ = [
    "FEW_EVAL_CLIPS",
    "check_data_folder",
    "check_data_given",
    "check_training_clips",
    "describe_splits",
    "choose_splits",
    "default_eval_split",
    "make_loader",
    "read_labels",
    "validation_note",
]


def choose_splits(folder: CaptionFolder, cfg: ClapDatasetConfig, seed: int) -> tuple[list, list, str]:
    """(train clips, evaluation clips, a sentence saying how they were chosen and what was left out).

    A folder with named splits must name the training split ``--dataset.train_split`` asks for: training on
    every clip instead would put the validation and test clips into training. The one exception is the
    layout "clips without a split + an evaluation split" (e.g. side by side with a ``test/`` folder), when
    ``--dataset.train_split`` is left at its default. An evaluation split that is the training split trains
    on all of its clips and evaluates on the same ones (`default_eval_split` chooses it only where the folder
    has no other).
    """
    splits = folder.splits
    train_name = normalise_split(cfg.train_split)
    test_name = None if cfg.test_split is None else normalise_split(cfg.test_split)
    if test_name is not None and test_name not in splits:
        raise CaptionFolderError(
            f"{folder.root}: --dataset.test_split {cfg.test_split!r} has no clips; splits present: "
            f"{describe_splits(folder) or 'none'}"
        )
    unsplit = [c for c in folder.clips if c.split is None]
    held_at_random = False  # (the one choice --dataset.eval_fraction shapes)
    default_train = normalise_split(ClapDatasetConfig().train_split)
    # The clips without a split are the training clips where the folder has no split of the default name.
    unsplit_train = train_name not in splits and bool(unsplit) and train_name == default_train
    if cfg.eval_split is not None:
        eval_name = normalise_split(cfg.eval_split)
        if eval_name not in splits and not (eval_name == train_name and unsplit_train):
            raise CaptionFolderError(
                f"{folder.root}: --dataset.eval_split {cfg.eval_split!r} has no clips; splits present: "
                f"{describe_splits(folder) or 'none'}"
            )
    else:
        eval_name = default_eval_split(folder, cfg)
    if unsplit_train and eval_name == train_name:
        # The overfitting check on a folder without splits (or beside them): its clips without a split train,
        # and are scored, all of them, as a named training split's are below.
        train = unsplit
        held = list(train)
        how = "the clips without a split both train and evaluate: the evaluation clips are the training clips"
    elif train_name in splits and eval_name == train_name:
        # --dataset.eval_split naming the training split: an overfitting check, which trains on every clip of
        # the split and scores those same clips (as its warning, `ClapDatasetConfig.same_split_warning`, says).
        train = folder.split(train_name)
        held = list(train)
        how = f"split '{train_name}' both trains and evaluates: the evaluation clips are the training clips"
    elif train_name in splits and eval_name is not None:
        train, held = folder.split(train_name), folder.split(eval_name)
        how = f"splits '{train_name}' / '{eval_name}'"
    elif train_name not in splits and eval_name is not None and unsplit and train_name == default_train:
        train, held = unsplit, folder.split(eval_name)
        how = f"clips without a split / split '{eval_name}'"
    elif splits and train_name not in splits:
        # (not the split --dataset.test_split scores: training on it was the advice where it was the only
        # other)
        others = [s for s in splits if s not in (eval_name, test_name)]
        advice = []
        if others:
            advice.append(f"pass the training split's name, e.g. --dataset.train_split {others[0]}")
            if "development" in others:
                advice[-1] += " (Clotho calls its training split 'development')"
        if unsplit and eval_name is not None:
            advice.append(
                f"leave --dataset.train_split at '{default_train}' to train on the clips without a split"
            )
        elif unsplit and others:
            advice.append(f"pass --dataset.eval_split {others[0]} to train on the clips without a split")
        if not advice:
            advice.append(f"the folder holds only the evaluation split '{eval_name}': add training clips")
        raise CaptionFolderError(
            f"{folder.root}: --dataset.train_split {cfg.train_split!r} names none of the folder's splits "
            f"({describe_splits(folder)}); {', or '.join(advice)}. (Training on every clip would train on "
            "the evaluation clips too.)"
        )
    else:
        pool = folder.split(train_name) if train_name in splits else list(folder.clips)
        train, held = holdout_split(pool, cfg.eval_fraction, seed=seed)
        held_at_random = True
        what = f"split '{train_name}'" if train_name in splits else "all clips"
        how = f"{what} with {plural(len(held), 'clip')} held out at random (seed {seed})"
    if cfg.eval_fraction != ClapDatasetConfig().eval_fraction and not held_at_random:
        # (A setting recorded in config.json as if it had held out that share of the clips: said here,
        # where the folder's splits are known.)
        how += (
            f"; --dataset.eval_fraction {cfg.eval_fraction:g} is not used: it holds out clips of a folder "
            "without an evaluation split"
        )
    scored = folder.split(test_name) if test_name is not None else []
    if test_name is not None:
        how += f"; scored after training: split '{test_name}'"
    used = {id(c) for c in (*train, *held, *scored)}
    left_out = Counter(c.split for c in folder.clips if id(c) not in used)
    if left_out:
        parts = [
            f"{n} without a split" if name is None else f"{n} in split '{name}'"
            for name, n in sorted(left_out.items(), key=lambda kv: (kv[0] is not None, kv[0] or ""))
        ]
        how += f"; left out: {', '.join(parts)}"
    return train, held, how


def default_eval_split(folder: CaptionFolder, cfg: ClapDatasetConfig) -> str | None:
    """The evaluation split with ``--dataset.eval_split`` unset: ``validation``, else ``test``, neither the
    test split nor the training split (``--dataset.train_split dev``, an alias of ``validation``, evaluated on
    the clips it trained on, without a word); the training split itself only where neither is left, as an
    explicit ``--dataset.eval_split`` naming it would (the run then warns: ``same_split_warning``)."""
    train_name = normalise_split(cfg.train_split)
    test_name = None if cfg.test_split is None else normalise_split(cfg.test_split)
    candidates = [s for s in ("validation", "test") if s in folder.splits and s != test_name]
    return next((s for s in candidates if s != train_name), candidates[0] if candidates else None)


def check_training_clips(folder: CaptionFolder, train_clips: list) -> None:
    """Refuse fewer than 2 training clips: a contrastive batch needs another clip's caption to tell apart."""
    if len(train_clips) < 2:
        # Where the clips have no split, the run holds some out to evaluate: say how many it takes in all.
        unsplit = all(clip.split is None for clip in folder.clips)
        held = " (the folder has no splits: --dataset.eval_fraction of them, 1 at least, evaluate)"
        held = held if unsplit else ""
        raise CaptionFolderError(
            f"{folder.root}: only {plural(len(train_clips), 'training clip')}; need at least 2, as a "
            f"contrastive batch tells each clip's caption from another clip's: add clips{held}"
        )


#: The refusal of a fine-tuning without its data.
DATA_REQUIRED = "--data FOLDER is required with --pretrained (a folder of audio + captions)"


def check_data_given(data: str | None) -> None:
    """Refuse a --data that is no folder, naming the flag: first among the checks (before a checkpoint is
    loaded, and before the demo's banner; the scan found it after both, in words that did not name it)."""
    if data is None or Path(data).expanduser().is_dir():
        return
    what = "not a folder" if Path(data).expanduser().exists() else "no such folder"
    raise CaptionFolderError(f"--data {data}: {what} (expected a folder of audio files with captions)")


def check_data_folder(cfg: ClapRecipeConfig) -> None:
    """The data folder's checks that need no decoding, for the launcher of local processes: a folder that
    leaves too few clips (unreadable headers, clips too short, too few to hold some out) is refused once,
    after its report, before the ranks start; each rank would print both, or lose the report when another
    rank's exit ends the job. What only decoding finds is left to the ranks, which report it from rank 0."""
    if cfg.data is None and cfg.pretrained is not None:
        raise ValueError(DATA_REQUIRED)
    if cfg.data is None:  # the demo folder, generated by the ranks
        return
    check_data_given(cfg.data)
    folder = scan_caption_folder(cfg.data)
    folder.check_headers()
    try:
        if not folder.clips:
            raise CaptionFolderError("no usable captioned clips found")
        train_clips, _, _ = choose_splits(folder, cfg.dataset, cfg.train.seed)
        check_training_clips(folder, train_clips)
    except CaptionFolderError:
        print(folder.report(), flush=True, file=sys.stderr)
        raise


def describe_splits(folder: CaptionFolder) -> str:
    """``"development (6 clips), test (2), validation (2)"``, plus the clips without a split, if any."""
    counts = Counter(c.split for c in folder.clips)
    parts = [
        f"{name} ({plural(counts[name], 'clip') if i == 0 else counts[name]})"
        for i, name in enumerate(folder.splits)
    ]
    if counts[None]:
        parts.append(f"{plural(counts[None], 'clip')} without a split")
    return ", ".join(parts)


def make_loader(dataset: CaptionDataset, extractor, batch_size: int, train: bool, seed: int, workers: int):
    """Batches of ``input_features``, ``is_longer``, ``input_ids``, ``attention_mask`` (numpy → mx), and
    under data parallel with padded shards ``valid`` (bool, False on the rows that repeat a clip)."""
    world = collectives.world_size()
    # A short last batch has fewer negatives (a batch of one clip scores loss 0 and accuracy 1) and costs a
    # new compiled shape: dropped, in validation too, when the clips fill at least one whole batch. The
    # retrieval scores do not use this loader: they embed every clip.
    # (Judged on the whole job's batch under data parallel, here `batch_size` per rank: the same batches
    # as one process. Judged on one rank's, fewer clips than the job's batch made each rank's shard too
    # short for a whole batch under mlx.launch, and the run trained no step.)
    drop_last = len(dataset) > batch_size * world
    # Otherwise, with a clip count that is not a multiple of the ranks, the shards are padded with repeats of
    # the first clips (each rank's batch keeps one size for the loss's gather). A repeat in the gathered batch
    # would be its original's negative (the same audio and caption scored as a mismatch) and change the loss:
    # `valid` marks the padding for `clap_contrastive_loss` to leave out. Each rank's whole shard is then one
    # batch (it holds at most `batch_size` clips), so the shard's padding is the batch's.
    padding = None
    if not drop_last and len(dataset) % world:
        padding = shard_padding(len(dataset), rank=collectives.rank(), world_size=world)

    def collate(items: list[dict]) -> dict:
        # Each clip's random crop comes from its own (seed, epoch, index): reproducible in any worker, and
        # the same whatever batch (or data-parallel rank) the clip lands in.
        rngs = [np.random.default_rng([int(x) for x in item["seed"]]) for item in items]
        feats = extractor([item["waveform"] for item in items], rng=rngs, train=train)
        batch = {
            "input_features": feats["input_features"],
            "is_longer": with_cropped_flags(feats["is_longer"], items),
            "input_ids": np.stack([item["input_ids"] for item in items]),
            "attention_mask": np.stack([item["attention_mask"] for item in items]),
        }
        if padding is not None:
            if len(items) != len(padding):
                raise RuntimeError(f"a padded shard of {len(padding)} clips came in a batch of {len(items)}")
            batch["valid"] = ~padding
        return batch

    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=train,
        num_workers=workers,
        collate_fn=collate,
        drop_last=drop_last,
        # Under data parallel every rank's shard keeps the same size, in evaluation too: the contrastive loss
        # gathers the ranks' batches (an all_gather of unequal batches aborts MPI or hangs the ring).
        pad_shards=True,
        seed=seed,
    )


def validation_note(n_clips: int, batch_size: int, processes: int = 1) -> str | None:
    """What `make_loader` leaves out of val_loss / val accuracies, in a sentence (None when nothing).

    ``batch_size`` is one process's, ``processes`` the job's ranks: as `make_loader`, the note judges the
    job's batch (``batch_size * processes``), the batch val_loss is scored over."""
    job = batch_size * processes
    left = n_clips % job if n_clips > job else 0
    if not left:
        return None
    batches = f"--train.eval_batch_size {batch_size}"
    if processes > 1:
        batches = f"the job's {job} clips, {batch_size} in each of {processes} processes"
    return (
        f"note: val_loss and val accuracies use {n_clips - left} of the {n_clips} evaluation clips (whole batches "
        f"of {batches}; the last {left} would form a batch with fewer negatives); "
        "retrieval scores use all of them"
    )


def window_note(dataset: CaptionDataset, extractor, role: str) -> str | None:
    """How much of each clip of `dataset` the model hears, in a sentence (None when every clip fits the front
    end's window exactly or no length is known).

    Field recordings of a minute train on the front end's window (LAION's 10 s, the demo's 2 s): without this
    a user saw only clip counts and could not tell that most of each recording is never heard. ``role`` is
    ``"training"`` or ``"evaluation"``; lengths are the ones `CaptionFolder.check_audio` measured at the
    dataset's rate (clips of unknown length are left out of the counts)."""
    window = int(extractor.nb_max_samples)
    rate = dataset.sampling_rate
    lengths = [c.num_samples for c in dataset.clips if c.num_samples is not None]
    longer = [n for n in lengths if n > window]
    shorter = [n for n in lengths if n < window]
    if not longer and not shorter:
        return None
    total = len(dataset.clips)
    seconds = f"{window / rate:g} s"
    parts = []
    if longer:
        what = f"{len(longer)} of the {total} {role} clips {'is' if len(longer) == 1 else 'are'} longer "
        what += f"than the front end's {seconds} window (max_length_s; up to {max(longer) / rate:.1f} s)"
        fusion = extractor.truncation == "fusion"
        if dataset.train:
            how = (
                f"the model hears the whole clip squeezed to {seconds} plus 3 random {seconds} windows, one "
                "from each third"
                if fusion
                else f"the model hears one random {seconds} window of each"
            )
            how += ", drawn anew each epoch (seeded: the same on a rerun or resume)"
        else:
            how = (
                f"they are scored on the whole clip squeezed to {seconds} plus the {seconds} windows at the "
                "middle of each third"
                if fusion
                else f"they are scored on their centre {seconds} (the same every time)"
            )
        parts.append(f"{what}: {how}")
    if shorter:
        fill = {
            "repeatpad": "repeated as many whole times as fit, then padded with silence",
            "repeat": "repeated to fill it",
            "pad": "padded with silence",
        }.get(extractor.padding, f"padded ({extractor.padding})")
        who = f"{len(shorter)}" if longer else f"{len(shorter)} of the {total} {role} clips"
        parts.append(
            f"{who} {'is' if len(shorter) == 1 else 'are'} shorter"
            f"{'' if longer else f' than the front end{chr(39)}s {seconds} window (max_length_s)'} "
            f"(from {min(shorter) / rate:.1f} s) and {fill} (padding {extractor.padding!r})"
        )
    return "note: " + "; ".join(parts)


def accumulation_note(batch_size: int, accumulate_grad_batches: int, processes: int = 1) -> str | None:
    """What ``--train.accumulate_grad_batches`` does to the contrastive loss, in a sentence (None at 1).

    Accumulation averages the gradients of several batches, but each batch's InfoNCE scores its pairs only
    against the other pairs of that batch (gathered across the job's ``processes``): K batches of N are K
    losses over N - 1 negatives each, not one loss over N * K - 1 (4 batches of 2 gave 0.40 where one batch
    of the same 8 pairs gave 0.55). Users reach for accumulation to get CLIP's large batches on a small
    machine, so the run says what it does; LAION and open_clip accumulate the same way (GradCache, which
    would give the large batch's loss, embeds every batch twice: not done here). ``batch_size`` is one
    process's."""
    if accumulate_grad_batches <= 1:
        return None
    job = batch_size * processes
    window = job * accumulate_grad_batches
    return (
        f"note: --train.accumulate_grad_batches {accumulate_grad_batches} averages the gradients of "
        f"{accumulate_grad_batches} batches of {job} clips, but each batch's contrastive loss scores its "
        f"clips only against each other ({plural(job - 1, 'negative')} each), not against all "
        f"{window} (it is not the loss of one batch of {window}); "
        "for more negatives raise --train.batch_size (data-parallel processes gather their batches)"
    )


#: Below this many evaluation clips the recipe says that retrieval scores are close to chance level.
FEW_EVAL_CLIPS = 50

LABEL_FILE_SUFFIXES = (".txt", ".text", ".lst", ".list", ".labels", ".csv", ".tsv", ".json", ".yaml", ".yml")


def looks_like_a_path(spec: str) -> bool:
    """A value meant as a file rather than a class list: no comma, and a path separator or a file suffix."""
    if "," in spec:
        return False
    separators = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    return any(sep in spec for sep in separators) or spec.strip().lower().endswith(LABEL_FILE_SUFFIXES)


def read_labels(spec: str | None) -> list[str] | None:
    """``--dataset.zero_shot_labels``: a file with one class per line, or a comma-separated list.

    A value that looks like a file (a path separator or a suffix such as ``.txt``, and no comma) must exist:
    a mistyped file name is an error, not a one-class list named after the file. The file is read as the
    metadata is: UTF-8, a leading BOM (Notepad, Excel) dropped. A class given twice is refused, naming where:
    it would get two prompts and shift the zero-shot scores.
    """
    if spec is None:
        return None
    if not spec.strip():
        # Path("") is the working folder: an empty value (an unset shell variable) was "'' is a folder"
        raise ValueError(
            "--dataset.zero_shot_labels is empty; expected a file with one class per line or a "
            "comma-separated list (leave the flag out to use the clips' labels)"
        )
    path = Path(spec).expanduser()
    if path.is_dir():
        raise ValueError(
            f"--dataset.zero_shot_labels {spec!r} is a folder; expected a file with one class per line "
            "or a comma-separated list"
        )
    if not path.is_file() and looks_like_a_path(spec):
        raise FileNotFoundError(
            f"--dataset.zero_shot_labels: file not found: {spec} (expected a file with one class per line, "
            "or a comma-separated list of classes)"
        )
    if path.is_file():
        try:
            text = read_utf8_text(path, what="the label file")
        except ValueError as error:  # (it starts with the file's name, as the errors below)
            raise ValueError(f"--dataset.zero_shot_labels {error}") from None
        lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
        if not lines:
            raise ValueError(
                f"--dataset.zero_shot_labels {path}: no labels (expected one class name per line)"
            )
        _refuse_repeats(lines, f"--dataset.zero_shot_labels {path}", "line")
        return [label for _, label in lines]
    parts = [(n, part.strip()) for n, part in enumerate(spec.split(","), start=1) if part.strip()]
    if not parts:
        raise ValueError(f"--dataset.zero_shot_labels {spec!r}: no labels (a file or a comma-separated list)")
    _refuse_repeats(parts, f"--dataset.zero_shot_labels {spec!r}", "item")
    return [label for _, label in parts]


def _refuse_repeats(numbered: list[tuple[int, str]], source: str, unit: str) -> None:
    """Raise for the first class of `numbered` ((line or item number, class) pairs) that is given twice."""
    first: dict[str, int] = {}
    for number, label in numbered:
        if label in first:
            raise ValueError(
                f"{source}: {unit} {number} repeats the class {label!r} of {unit} {first[label]}; give each "
                "class once (a repeated class gets a second prompt and skews the zero-shot scores)"
            )
        first[label] = number
