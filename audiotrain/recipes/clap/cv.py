"""K-fold cross-validation of the CLAP recipe, grouped by clip: ``python -m audiotrain.recipes.clap cv``.

`CV_HELP` is what ``cv --help`` prints: how the folds are made and what the run folder receives.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from audiotrain._files import write_json_atomically
from audiotrain._system import refusal_status
from audiotrain.cross_validation import CVResult, cv_outputs, fold_name, grouped_folds
from audiotrain.datasets.captions import CaptionedClip, CaptionFolder, CaptionFolderError, scan_caption_folder
from audiotrain.distributed import collectives
from audiotrain.metrics.plot_loading import plots_wanted
from audiotrain.recipes._run import (
    check_kernel_cache,
    check_run_folder,
    clear_run_outputs,
    create_run_folder,
    holds_json_record,
    quiet_unless_main,
    stop_status_of_rank,
)
from audiotrain.recipes.clap.bundle import (
    check_pretrained_folder,
    check_settings_fit,
    demo_extractor_settings,
    load_checkpoint,
)
from audiotrain.recipes.clap.cli import EXIT_STATUSES, build_parser, diverged_message, parse_arguments
from audiotrain.recipes.clap.config import ClapDatasetConfig, ClapRecipeConfig
from audiotrain.recipes.clap.data import DATA_REQUIRED, check_data_given
from audiotrain.recipes.clap.train import DEMO_BANNER, demo_data_folder, holding_the_demo_cache, run
from audiotrain.recipes.config_cli import USER_ERRORS, exit_status_help, help_text, returning_exit_status
from audiotrain.train.interrupt import stopped_by
from audiotrain.train.nonfinite import NonFiniteStop

import numpy as np

#: What ``cv --help`` prints above the flags (plain text, wrapped to the terminal by `help_text`).
CV_HELP = """K-fold cross-validation of the CLAP recipe, grouped by clip:

  python -m audiotrain.recipes.clap cv --folds 5 --data my_sounds/ --pretrained laion/clap-htsat-unfused
  python -m audiotrain.recipes.clap cv --folds 5

(the second: the offline demo, on generated clips). Every usable clip of the folder, whatever its split, is
held out by exactly one fold, with all its captions: a clip's captions are never split between folds, nor
between a fold's training, validation and held-out clips (folds are balanced by captions). In each fold the
other clips are split again, by clip, into training and validation (--dataset.eval_fraction of them, at least
one clip); validation picks the best checkpoint (by val_mAP@10, or val_loss with
--train.retrieval_every_epoch false) and the held-out clips are scored with it. Every other setting and flag
is the recipe's (--preset, --config, ...), except --resume and the split choice (--dataset.train_split /
--dataset.eval_split), which are refused.

Official folds (ESC-50's 5, UrbanSound8K's 10, as published scores use): write each clip's fold in the
metadata's 'split' column (fold1 ... fold5) and pass --folds_by_split; each split is then held out once (in
name order, numbers as numbers: fold2 before fold10), its validation clips (--dataset.eval_fraction) drawn
from the other splits.

The run folder (--out, default runs/clap-cv-<date>-<time>; one that holds files is refused unless
--overwrite) receives:

- fold<k>/: a whole run of the recipe: config.json, checkpoints/, history.json, plots/, retrieval.json
  (before/after scores on the fold's held-out clips), hf_model/
- folds.json: each fold's training, validation and held-out clips (by name)
- cv_scores.json, cv_scores.md: held-out text→audio and audio→text R@1/5/10 and mAP@10 (and zero-shot
  accuracy when the clips are labelled) per fold, their mean and standard deviation (in % in the .md), after
  fine-tuning, then as before_<score> the pretrained model's on the same clips

The output numbers the folds as their folders: "=== fold 0 (1 of 5): RUN/fold0".
"""

#: The held-out scores of each fold, in the table's order (zero-shot only where the clips have labels).
CV_METRICS = (
    *(
        f"{way}_{score}"
        for way in ("text_to_audio", "audio_to_text")
        for score in ("R@1", "R@5", "R@10", "mAP@10")
    ),
    "mAP@10",
    "zero_shot_top1_accuracy",
    "zero_shot_top5_accuracy",
)


def held_out_scores(before: dict, after: dict) -> dict[str, float]:
    """A fold's row of cv_scores: the fine-tuned model's held-out scores, then the pretrained model's on the
    same clips as ``before_<score>`` (its zero-shot accuracy: what fine-tuning is compared with; the table
    had the fine-tuned side alone, and each fold's retrieval.json had to be read for the other)."""
    scores = {m: float(after[m]) for m in CV_METRICS if m in after}
    scores.update({f"before_{m}": float(before[m]) for m in CV_METRICS if m in before})
    return scores


class FoldInterrupted(Exception):
    """Ctrl-C stopped a fold's training (which saved and scored it): the folds after it do not run."""


@dataclass(frozen=True)
class ClipFold:
    """One fold's clips, by name: `audiotrain.recipes.clap.train.run_job` trains, validates and scores them."""

    index: int
    folds: int
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    #: The folder's split this fold holds out (`split_folds`: official folds, ESC-50's), None for drawn folds.
    held_out_split: str | None = None

    def select(self, folder: CaptionFolder) -> tuple[list, list, list, str]:
        """(train, validation, held-out clips of `folder`, a sentence naming the fold). Clips whose audio the
        run's scan found unreadable are no longer in `folder`, so they drop out of every part alike."""
        by_name = {c.name: c for c in folder.clips}
        parts = [[by_name[n] for n in names if n in by_name] for names in (self.train, self.val, self.test)]
        for part, what in zip(parts, ("training", "validation", "held-out")):
            if not part:
                raise CaptionFolderError(
                    f"{folder.root}: {fold_name(self.index, self.folds)} has no readable {what} clips left"
                )
        how = (
            f"split {self.held_out_split!r} held out"
            if self.held_out_split is not None
            else "grouped by clip"
        )
        return (*parts, f"{fold_name(self.index, self.folds)}, {how}")


def clip_folds(
    clips: list[CaptionedClip], folds: int, seed: int, val_fraction: float, source: str
) -> list[ClipFold]:
    """``folds`` folds over ``clips`` in which each clip and all its captions stay together."""
    owner = [i for i, clip in enumerate(clips) for _ in clip.captions]  # one entry per caption: its clip
    parts = grouped_folds(owner, folds, seed, val_fraction, unit="clips", source=source, flag="--folds")

    def names(captions: list[int]) -> tuple[str, ...]:
        return tuple(clips[i].name for i in dict.fromkeys(owner[c] for c in captions))

    return [ClipFold(f.index, folds, names(f.train), names(f.val), names(f.test)) for f in parts]


def split_folds(clips: list[CaptionedClip], seed: int, val_fraction: float, source: str) -> list[ClipFold]:
    """One fold per split of ``clips`` (in name order), holding out that split's clips: the official folds of
    ESC-50 or UrbanSound8K written as the split (``fold1`` ... ``fold5``), which published scores use, as
    random folds put one recording's clips (ESC-50's ``src_file``) on both sides. The other splits' clips are
    split, seeded and by clip, into training and ``val_fraction`` validation (at least one clip)."""
    unsplit = [c.name for c in clips if c.split is None]
    if unsplit:
        raise CaptionFolderError(
            f"{source}: --folds_by_split holds out each split once, but {len(unsplit)} clip(s) have no split "
            f"(first: {unsplit[0]}); give every row a 'split' cell (its fold: fold1 ... fold5)"
        )
    # fold2 before fold10 (UrbanSound8K's ten): fold<k>/ and the table's columns follow their numbers
    splits = sorted(
        {c.split for c in clips},
        key=lambda name: [(int(t), t) if t.isdigit() else (-1, t) for t in re.split(r"(\d+)", name)],
    )
    if len(splits) < 2:
        raise CaptionFolderError(
            f"{source}: --folds_by_split needs 2 splits or more to hold out in turn, found {splits}; "
            "write each "
            "clip's fold in the 'split' column (fold1 ... fold5)"
        )
    rng = np.random.default_rng(seed)
    plan = []
    for index, split in enumerate(splits):
        rest = [c.name for c in clips if c.split != split]
        order = [rest[i] for i in rng.permutation(len(rest))]
        n_val = min(max(1, round(val_fraction * len(rest))), len(rest) - 1)
        test = tuple(c.name for c in clips if c.split == split)
        plan.append(ClipFold(index, len(splits), tuple(order[n_val:]), tuple(order[:n_val]), test, split))
    return plan


@holding_the_demo_cache  # its folds read the demo set as their --data
def run_cross_validation(
    cfg: ClapRecipeConfig, folds: int | None = 5, argv: list[str] | None = None, by_split: bool = False
) -> CVResult:
    """Train and score ``folds`` folds grouped by clip, or (`by_split`) one fold per split of the folder
    holding it out; see `CV_HELP` for what is written."""
    if cfg.resume:
        raise ValueError(
            "cv: --resume continues one run, but a cross-validation trains every fold from the start; drop "
            "--resume (or resume one fold's run with the recipe's own command)"
        )
    default = ClapDatasetConfig()
    chosen = (cfg.dataset.train_split, cfg.dataset.eval_split, cfg.dataset.test_split)
    if chosen != (default.train_split, default.eval_split, default.test_split):
        raise ValueError(
            "cv: --dataset.train_split / --dataset.eval_split / --dataset.test_split choose the splits of one run, "
            "but a cross-validation "
            + (
                "with --folds_by_split holds out each split in turn, training and validating on the others; "
                if by_split
                else "folds every clip of the folder, whatever its split; "
            )
            + "leave them unset"
        )
    demo = cfg.pretrained is None
    if not demo and cfg.data is None:
        raise ValueError(DATA_REQUIRED)
    check_data_given(cfg.data)
    main = collectives.is_main_process()
    out = Path(cfg.out) if cfg.out else None
    # --overwrite replaces a cv run's folder only: its folds.json tells it from a folder of the user's files.
    cv_record = holds_json_record("folds.json", ("data", "seed", "folds"))
    replace = out is not None and check_run_folder(
        out, "--out", cfg.overwrite, holds_run=cv_record, outputs=cv_outputs(out) if out.is_dir() else None
    )
    data = Path(cfg.data) if cfg.data is not None else demo_data_folder(cfg)
    if demo:
        sampling_rate = demo_extractor_settings()["sampling_rate"]
    else:
        # The model is loaded once now: one that cannot load failed in the first fold's run, once folds.json
        # was written, and the corrected command was then refused as another run's folder.
        check_pretrained_folder(cfg.pretrained)
        bundle = load_checkpoint(cfg.pretrained, cfg.dataset.max_tokens)
        check_settings_fit(cfg, bundle.config)
        sampling_rate = bundle.extractor.sampling_rate
    # The audio is checked before the folds are drawn (each run checks it again): a clip too short or
    # unreadable, folded with the rest, was listed in folds.json and counted but scored by no fold, and could
    # leave a fold without validation clips.
    folder = scan_caption_folder(data, sampling_rate=sampling_rate)
    if by_split:
        plan = split_folds(folder.clips, cfg.train.seed, cfg.dataset.eval_fraction, str(folder.root))
        if folds is not None and folds != len(plan):
            raise CaptionFolderError(
                f"{folder.root}: --folds {folds} but --folds_by_split finds {len(plan)} splits "
                f"({', '.join(sorted({c.split for c in folder.clips}))}); leave --folds out"
            )
        folds = len(plan)
    else:
        plan = clip_folds(folder.clips, folds, cfg.train.seed, cfg.dataset.eval_fraction, str(folder.root))
    # Each fold's run needs 2 training clips (`check_training_clips`): found now, before folds.json is written
    # (a fold that failed on it left a cv folder that looked interrupted).
    thin = next((fold for fold in plan if len(fold.train) < 2), None)
    if thin is not None:
        # Only the changes that can help are offered: at one clip a fold, and one validating, only more clips.
        ways = ["more --folds (each holds out fewer clips)"] if folds < len(folder.clips) else []
        ways += ["a smaller --dataset.eval_fraction"] if len(thin.val) > 1 else []
        enough = "add clips (a fold needs 1 held out, 1 validating and 2 training: 4 clips at least)"
        ways = f"use {' or '.join(ways)}, or add clips" if ways else enough
        raise CaptionFolderError(
            f"{folder.root}: {len(folder.clips)} clips in {folds} folds leave "
            f"{fold_name(thin.index, folds)} {len(thin.train)} training clip(s) once its "
            f"{len(thin.test)} test and {len(thin.val)} validation clips are set aside; a contrastive batch "
            f"needs at least 2: {ways}"
        )
    if demo and main:  # once for the command, after the checks of the folder (the folds' runs leave it out)
        print(DEMO_BANNER, file=sys.stderr)
    if replace and main:
        # (on stderr, as every diagnostic of the recipe: stdout holds the results alone)
        clear_run_outputs(out, cv_outputs(out), lambda line: print(line, file=sys.stderr))
    out = Path(
        collectives.broadcast_from_main(
            str(create_run_folder(out, "clap-demo-cv" if demo else "clap-cv")) if main else None
        )
    )
    captions = sum(len(c.captions) for c in folder.clips)
    if main:
        record = {
            "data": str(folder.root),
            "seed": cfg.train.seed,
            "folds": [dataclasses.asdict(f) for f in plan],
        }
        write_json_atomically(out / "folds.json", record)
    fold_scores, histories, fold_dirs = [], [], []
    for fold in plan:
        fold_dir = out / f"fold{fold.index}"
        print(f"\n=== {fold_name(fold.index, folds)}: {fold_dir}")  # its run then says its clips
        fold_cfg = dataclasses.replace(cfg, data=str(data), out=str(fold_dir), overwrite=False)
        result = run(fold_cfg, ["cv", *(argv or [])], fold=fold)
        if result["interrupted"]:
            raise FoldInterrupted(  # (a KeyboardInterrupt went past main's except, and its line with it)
                f"cv: {fold_name(fold.index, folds)} was interrupted ({stopped_by()}); its run is in "
                f"{result['run_dir']}. A cross-validation trains every fold from the start (it has no "
                "--resume): run it again, into a new --out or with --overwrite"
            )
        if main:
            fold_scores.append(held_out_scores(result["before"], result["after"]))
        histories.append(result["history"])
        fold_dirs.append(Path(result["run_dir"]))
    cv = CVResult(out, fold_scores, histories, fold_dirs, percent=True)
    if main:
        cv.write(clips=len(folder.clips), captions=captions)
        print(
            f"\n{folds}-fold cross-validation over {len(folder.clips)} clips ({captions} captions, "
            f"{'one fold per split' if by_split else 'grouped by clip'}), "
            f"held-out scores in %:\n{cv.table()}\nrun folder: {out} (fold<k>/, folds.json, cv_scores.json, "
            "cv_scores.md)"
        )
    return cv


@returning_exit_status
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[2:] if argv is None else argv)
    parser = build_parser()
    parser.prog = "python -m audiotrain.recipes.clap cv"
    parser.help_command = f"{parser.prog} --help"  # (its errors point at cv's own help, with --folds)
    parser.description = help_text(CV_HELP)
    example = help_text(
        "Example:\n\n  python -m audiotrain.recipes.clap cv --folds 5 --data my_sounds/ --pretrained "
        "laion/clap-htsat-unfused --train.epochs 10"
    )
    parser.epilog = f"{example}\n\n{exit_status_help(EXIT_STATUSES)}"
    parser.add_argument(
        "--folds",
        type=int,
        default=None,
        help="number of folds (default 5, or the splits' count), grouped by clip",
    )
    parser.add_argument(
        "--folds_by_split",
        action="store_true",
        help="the folder's splits are the folds (ESC-50's official folds as the 'split' column: fold1 ... "
        "fold5): each is held out once, its training and validation clips drawn from the others",
    )
    for action in parser._actions:  # (refused with a line saying why: every fold trains from the start)
        if "--resume" in action.option_strings:
            action.help = argparse.SUPPRESS
    cfg, args = parse_arguments(parser, argv)
    if args.folds is None and not args.folds_by_split:
        args.folds = 5
    if (
        args.folds is not None and args.folds < 2
    ):  # now, not once the demo clips are generated or the folder scanned
        parser.error(f"cross-validation needs --folds >= 2, got {args.folds}")
    if cfg.train.processes > 1:
        parser.error(
            f"--train.processes {cfg.train.processes}: cv trains its folds in this process (fine-tuning starts "
            "one process per core); under mlx.launch or mpirun every fold trains data parallel"
        )
    # Under a launcher rank 0 speaks for the job (each fold's run does so already; the fold headers and the
    # demo folder's line came from every rank).
    try:
        check_kernel_cache()
        plots_wanted()  # (a bad AUDIOTRAIN_PLOTS: refused now, not as the first fold starts)
        with quiet_unless_main():
            run_cross_validation(cfg, args.folds, argv, by_split=args.folds_by_split)
    except USER_ERRORS as error:
        return refusal_status(error)
    except NonFiniteStop as stop:  # (as fine-tuning says it; the fold is in the checkpoint's path)
        return refusal_status(stop, diverged_message(stop, cfg))
    except FoldInterrupted as stop:
        if collectives.is_main_process():  # (every rank of a launched job stops)
            print(f"{stop}", file=sys.stderr)
        # As a shell reports a command that signal stopped (130, 143 for SIGTERM): rank 0 alone, which
        # scored and exported the fold after the others' part ended (`stop_status_of_rank`).
        return stop_status_of_rank()
    return 0
