"""The ``evaluate`` command: a CLAP model's retrieval and zero-shot scores on a folder of audio + captions,
without training (``python -m audiotrain.recipes.clap evaluate --model M --data FOLDER``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from audiotrain._files import write_json_atomically
from audiotrain._invocation import as_started
from audiotrain._lazy import imported_on_call
from audiotrain._system import refusal_status, versions
from audiotrain._text import plural
from audiotrain.datasets.captions import (
    CaptionDataset,
    CaptionFolderError,
    normalise_split,
    scan_caption_folder,
)
from audiotrain.metrics.retrieval import DEFAULT_PROMPT_TEMPLATE, inserts_the_label_once
from audiotrain.recipes._run import check_can_write, ends_on_other_ranks, nonempty_path
from audiotrain.recipes.clap.bundle import RUN_CONFIG, model_folder_to_score, read_run_record
from audiotrain.recipes.clap.config import ClapDatasetConfig, ClapRecipeConfig, ClapTrainConfig
from audiotrain.recipes.clap.data import check_data_given, describe_splits, read_labels, window_note
from audiotrain.recipes.clap.report import format_columns
from audiotrain.recipes.config_cli import (
    MAX_BATCH_SIZE,
    USER_ERRORS,
    SettingError,
    SettingsParser,
    add_overwrite_argument,
    check_setting,
    help_text,
)

import mlx.core as mx

# audiotrain.recipes.clap.train's scoring, imported as the command scores: that module imports the trainer
# (~0.3 s of CPU), which `evaluate --help` and a usage error do not need.
(
    copied_clips_note,
    dataset_settings,
    few_clips_note,
    load_for_settings,
    score_clips,
    shared_captions_note,
    zero_shot_labels,
) = (
    imported_on_call("audiotrain.recipes.clap.train", name)
    for name in (
        "copied_clips_note",
        "dataset_settings",
        "few_clips_note",
        "load_for_settings",
        "score_clips",
        "shared_captions_note",
        "zero_shot_labels",
    )
)

__all__ = ["EVALUATE_HELP", "build_evaluate_parser", "evaluate_main"]

EVALUATE_HELP = """Score a CLAP model on a folder of audio + captions, without training:

  python -m audiotrain.recipes.clap evaluate --model RUN/hf_model --data my_sounds/ --split test

--model is a Hugging Face CLAP folder (a pretrained checkpoint, an export's folder, a run's hf_model/; a run
folder means its hf_model/) or a hub id (downloaded, or read from the Hugging Face cache offline). A trainer
checkpoint is scored once exported (export --help). --data takes the layouts training takes (see the training
command's --help); every clip of the folder is scored, or with --split NAME the clips of that split. Skipped
files are counted on stderr (every one listed there, or in the --out file).

It prints text->audio and audio->text retrieval (R@1/5/10, mAP@10) and, where the clips have labels (or
--dataset.zero_shot_labels names the classes), zero-shot accuracy, with how many clips and captions were
scored; the same evaluation as a run's "before" and "after" scores (retrieval.json), so a run's hf_model/ on
its evaluation clips scores its "after". --out FILE.json writes the scores with what was scored (model, data
folder, split, counts, settings, versions).
"""

#: The refusal of an evaluate without its model (the offline demo has none of its own to score).
MODEL_REQUIRED = (
    "--model is required: a Hugging Face CLAP folder (a run's RUN/hf_model, an export's folder, a pretrained "
    "checkpoint) or a hub id; the offline demo's model is a run's: train one first (python -m "
    "audiotrain.recipes.clap --preset quick_test --out RUN) and pass --model RUN/hf_model"
)


def build_evaluate_parser() -> argparse.ArgumentParser:
    """``evaluate``'s parser: --model, --data, --split, --out, --overwrite and the scoring settings."""
    parser = SettingsParser(
        prog="python -m audiotrain.recipes.clap evaluate",
        description=help_text(EVALUATE_HELP),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model",
        default=None,
        type=nonempty_path,  # (an empty one was refused as "pretrained", a setting evaluate does not have)
        metavar="MODEL",
        help="Hugging Face CLAP folder (RUN/hf_model, an export, a pretrained checkpoint), a run folder, or a "
        "hub id",
    )
    parser.add_argument(
        "--data",
        default=None,
        type=nonempty_path,
        metavar="FOLDER",
        help="folder of audio + captions (the training layouts)",
    )
    parser.add_argument(
        "--split",
        default=None,
        metavar="NAME",
        help="score the clips of this split only (default: every clip of the folder)",
    )
    parser.add_argument(
        "--out",
        default=None,
        type=nonempty_path,
        metavar="FILE.json",
        help="write the scores and what was scored to this JSON file (refused if it exists, unless --overwrite)",
    )
    add_overwrite_argument(parser, help="replace the --out file")
    dataset, train = ClapDatasetConfig(), ClapTrainConfig()
    # The training command's names and defaults, so that a run's flags score as the run scored.
    parser.add_argument(
        "--dataset.max_tokens",
        dest="max_tokens",
        type=int,
        default=dataset.max_tokens,
        metavar="N",
        help="tokens per caption (default: a run's hf_model/ or run folder, the run's; else as training, the "
        "most the text tower takes up to 77)",
    )
    parser.add_argument(
        "--dataset.zero_shot_labels",
        dest="zero_shot_labels",
        metavar="LABELS",
        default=dataset.zero_shot_labels,
        help="zero-shot classes: a file with one per line, or a comma-separated list (default: the clips' labels)",
    )
    parser.add_argument(
        "--dataset.prompt_template",
        dest="prompt_template",
        metavar="TEMPLATE",
        default=None,
        help="zero-shot prompt, '{}' is replaced by the class (default: a run's hf_model/ or run folder, "
        f"the run's; else {dataset.prompt_template!r})",
    )
    parser.add_argument(
        "--batch_size",
        type=int,
        default=train.eval_batch_size,
        metavar="N",
        help=f"clips per batch through the audio tower (the run's --train.eval_batch_size; default "
        f"{train.eval_batch_size}); the scores do not depend on it",
    )
    parser.add_argument(
        "--precision",
        default=train.precision,
        metavar="PRECISION",
        help="'32', 'bf16-mixed' or 'bf16-true', the run's --train.precision: a bf16-true run scored its "
        '"after" with bfloat16 weights, the others with float32 ones, as this scores them (default '
        f"{train.precision})",
    )
    return parser


def _settings(args: argparse.Namespace) -> ClapRecipeConfig:
    """The recipe's settings that scoring reads, checked as training checks them (named as flags)."""
    try:
        dataset = ClapDatasetConfig(
            max_tokens=args.max_tokens,
            zero_shot_labels=args.zero_shot_labels,
            prompt_template=args.prompt_template
            if args.prompt_template is not None
            else DEFAULT_PROMPT_TEMPLATE,
        )
    except SettingError as error:
        raise ValueError(error.within("dataset.")) from None
    try:
        # Scoring embeds clips one batch at a time and computes no loss, so one clip a batch does: training's
        # minimum of 2 (a contrastive loss needs negatives) is not this flag's.
        check_setting("batch_size", args.batch_size, integer=True, at_least=1, at_most=MAX_BATCH_SIZE)
        train = ClapTrainConfig(precision=args.precision)
    except SettingError as error:
        raise ValueError(f"--{error.name} must be {error.expected}, got {error.value!r}") from None
    train.eval_batch_size = args.batch_size
    return ClapRecipeConfig(data=args.data, pretrained=args.model, dataset=dataset, train=train)


def check_out_file(out: str | None, overwrite: bool) -> Path | None:
    """The --out file, refused before any work where it is a folder, something else than a file (a device, a
    FIFO: the file is written beside it and swapped in, which would replace the node itself), exists
    (without `overwrite`) or cannot be written. Its folder may be missing: it is made as the file is
    written."""
    if out is None:
        return None
    path = Path(out)
    if path.is_dir():
        raise ValueError(f"--out {out}: a folder; evaluate writes one JSON file (--out FILE.json)")
    if path.exists() and not path.is_file():
        raise ValueError(
            f"--out {out}: not a regular file (a device or a FIFO); give a file (--out FILE.json)"
        )
    if path.exists() and not overwrite:
        raise FileExistsError(f"--out {out} exists; pass --overwrite to replace it, or choose another file")
    check_can_write(path.parent, f"--out {out}")
    return path


def _runs_dataset_settings(model: str) -> dict:
    """The dataset settings of the run whose hf_model/ `model` is (a run folder means it); empty where `model`
    is no CLAP run's."""
    folder = Path(model)
    if folder.name != "hf_model" or not (folder.parent / RUN_CONFIG).is_file():
        return {}
    try:
        dataset = read_run_record(folder.parent)["config"].get("dataset")
    except (OSError, ValueError):  # (not a CLAP run's record: the model folder is scored as it is)
        return {}
    return dataset if isinstance(dataset, dict) else {}


def runs_caption_length(model: str) -> int | None:
    """The --dataset.max_tokens of the run whose hf_model/ `model` is (a run folder means it), None where
    `model` is no run's or the run kept the default. Its hf_model/ does not record the length its "after" was
    scored with (a --preset quick_test run with --data: 24 tokens), and a caption cut elsewhere scores
    otherwise: without it a run's "after" was not scored again; a line on stderr says where it comes from."""
    tokens = _runs_dataset_settings(model).get("max_tokens")
    if not isinstance(tokens, int) or isinstance(tokens, bool):
        return None
    print(
        f"--dataset.max_tokens unset: {tokens}, as the run scored its captions "
        f"({Path(model).parent / RUN_CONFIG}); pass the flag to change it",
        file=sys.stderr,
    )
    return tokens


def runs_prompt_template(model: str) -> str | None:
    """The --dataset.prompt_template of the run whose hf_model/ `model` is, where it is not the default (None
    otherwise): a run prompting 'the sound of a {}' was scored again with 'This is a sound of {}.', so its
    zero-shot scores were not its "after"; a line on stderr says where it comes from."""
    template = _runs_dataset_settings(model).get("prompt_template")
    if not inserts_the_label_once(template) or template == DEFAULT_PROMPT_TEMPLATE:
        return None
    print(
        f"--dataset.prompt_template unset: {template!r}, as the run prompted its zero-shot classes "
        f"({Path(model).parent / RUN_CONFIG}); pass the flag to change it",
        file=sys.stderr,
    )
    return template


def evaluate_main(argv: list[str] | None = None) -> int:
    """``python -m audiotrain.recipes.clap evaluate``; returns the exit status (2 for a user's error)."""
    # As export: under a launcher every rank would score the same clips and write the same file.
    if ends_on_other_ranks("evaluate"):
        return 0
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_evaluate_parser()
    args = parser.parse_args(argv)
    if args.model is None:
        parser.error(MODEL_REQUIRED)
    if args.data is None:
        parser.error("--data FOLDER is required: the folder of audio + captions to score")
    try:
        cfg = _settings(args)
    except ValueError as error:
        parser.error(str(error))
    try:
        return _evaluate(cfg, args, argv)
    except USER_ERRORS as error:
        return refusal_status(error, as_started(str(error)))


def _evaluate(cfg: ClapRecipeConfig, args: argparse.Namespace, argv: list[str]) -> int:
    # The cheap checks first: a wrong --out, --data, label list or --model before the model loads.
    out = check_out_file(args.out, args.overwrite)
    check_data_given(cfg.data)
    labels = read_labels(cfg.dataset.zero_shot_labels)
    model, note = model_folder_to_score(args.model)
    if note:
        print(note, file=sys.stderr)
    if cfg.dataset.max_tokens is None:
        cfg.dataset.max_tokens = runs_caption_length(model)
    if args.prompt_template is None:
        cfg.dataset.prompt_template = runs_prompt_template(model) or cfg.dataset.prompt_template
    bundle = load_for_settings(model, cfg)
    if cfg.train.precision == "bf16-true":  # (the Trainer casts so; bf16-mixed keeps float32 weights)
        bundle.model.set_dtype(mx.bfloat16)
    sampling_rate = bundle.extractor.sampling_rate
    folder = scan_caption_folder(cfg.data, sampling_rate=sampling_rate)
    # Every skip is listed: on the screen, or (with --out) in the file, which holds the whole report.
    if out is None:
        print(folder.report(max_listed=None), flush=True, file=sys.stderr)
    else:
        print(folder.report(listed_in=f"{out} (data_report)"), flush=True, file=sys.stderr)
    if not folder.clips:
        raise CaptionFolderError(f"{folder.root}: no usable captioned clips found")
    split = None if args.split is None else normalise_split(args.split)
    if split is not None and split not in folder.splits:
        raise CaptionFolderError(
            f"--split {args.split}: {folder.root} has no clips in that split; splits present: "
            f"{describe_splits(folder) or 'none (the folder has no splits: leave --split out)'}"
        )
    clips = list(folder.clips) if split is None else folder.split(split)
    labels = zero_shot_labels(labels, folder, clips, cfg.dataset.prompt_template)
    dataset = CaptionDataset(
        clips, bundle.tokenizer, train=False, **dataset_settings(cfg, bundle, sampling_rate)
    )
    scores = score_clips(bundle.model, bundle, dataset, labels, cfg)
    # (kept in the --out file too: they say which scores are capped whatever the model)
    notes = [
        note
        for note in (
            few_clips_note(len(clips)),
            shared_captions_note(dataset),
            copied_clips_note(clips),
            window_note(dataset, bundle.extractor, "scored"),
        )
        if note
    ]
    for note in notes:
        print(note, file=sys.stderr)
    scored = f"{plural(len(dataset), 'clip')}, {plural(len(dataset.captions), 'caption')}"
    where = f"split '{split}' of {folder.root}" if split else f"{folder.root}"
    print(f"retrieval of {model} on {where} ({scored}):\n" + format_columns({"score": scores}))
    if out is not None:
        record = {
            "scores": scores,
            "model": args.model,
            "model_folder": str(Path(bundle.source).resolve()),
            "data_folder": str(folder.root),
            "split": split,
            "n_clips": len(dataset),
            "n_captions": len(dataset.captions),
            "captions_per_clip": [len(clip.captions) for clip in dataset.clips],
            "zero_shot_labels": labels,
            "settings": {
                "dataset.max_tokens": bundle.tokenizer.max_length,
                "dataset.zero_shot_labels": cfg.dataset.zero_shot_labels,
                "dataset.prompt_template": cfg.dataset.prompt_template,
                "batch_size": cfg.train.eval_batch_size,
                "precision": cfg.train.precision,
            },
            "skipped": len(folder.skipped),
            "data_report": folder.report(max_listed=None),
            "notes": notes,
            "versions": versions(),
            "command": [sys.executable, "-m", "audiotrain.recipes.clap", "evaluate", *argv],
        }
        out.parent.mkdir(parents=True, exist_ok=True)  # (check_out_file found that it can be made)
        write_json_atomically(out, record, indent=2)
        print(f"scores written to {out}")
    return 0
