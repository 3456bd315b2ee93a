"""Fine-tune CLAP on a folder of audio + captions: ``python -m audiotrain.recipes.clap``.

With a checkpoint::

    python -m audiotrain.recipes.clap --data my_sounds/ --pretrained laion/clap-htsat-unfused

loads the model (a local Hugging Face folder, or a hub id when online), evaluates text↔audio retrieval on the
held-out clips, fine-tunes with LAION's symmetric InfoNCE, evaluates again and writes the run folder:

    config.json        the resolved configuration, versions, command line (``--config RUN/config.json``
                       repeats the run; every checkpoint's trainer_state.json holds it too, as ``run_config``)
    data_report.txt    what was found in the data folder and what was skipped, and why
    checkpoints/       trainer checkpoints (``last`` resumes with ``--resume``; the best by val_mAP@10)
    history.json       per-epoch train/val loss, accuracies and retrieval scores
    plots/             loss.png, accuracy.png, retrieval.png (before/after), retrieval_per_epoch.png
    retrieval.json     retrieval (R@1/5/10, mAP@10 both ways) and zero-shot scores before and after
    hf_model/          the best checkpoint (by val_mAP@10; the final weights when no validation ran) as a
                       Hugging Face folder (transformers.ClapModel.from_pretrained); "after" scores these weights

Settings: defaults < ``--preset`` (``quick_test``: seconds; ``development``; ``production``: real data) <
``--config FILE`` (YAML/JSON; it may name its own ``preset:``) < flags.

Any checkpoint of a run exports to a Hugging Face folder with::

    python -m audiotrain.recipes.clap export --checkpoint RUN/checkpoints/last --out DIR

Without ``--pretrained`` it runs an OFFLINE DEMO: a small randomly initialised CLAP and a BPE tokenizer
trained on the captions, on a generated folder of captioned synthetic sounds (or on ``--data``), so the
command works with no download. Its numbers say nothing about real CLAP models.

Data: ``clip.wav`` + ``clip.txt`` (one caption per line) side by side, or one metadata file
(``metadata.jsonl``, ``metadata.json``, ``metadata.csv`` or ``metadata.tsv``, UTF-8) with ``file_name`` and
``caption`` (a list in JSON; ``caption_1``, ``caption_2``, ... or ``text`` columns in CSV, which may be comma-,
semicolon- or tab-separated; names are case-insensitive) and optional ``split`` and ``label`` (zero-shot
class). Any sample rate, mono or stereo. Missing or empty captions, absent files, paths leading outside the
folder and unreadable audio are skipped and listed, with their cause, in data_report.txt.

Splits: the folder's ``--dataset.train_split`` (``train``) trains; ``validation`` (else ``test``) evaluates.
A folder with named splits but none called ``train`` (Clotho: ``development``/``validation``/``evaluation``)
is an error that lists them: pass ``--dataset.train_split development``. A folder without splits holds out
``--dataset.eval_fraction`` of its clips (seeded). Clips of other splits are left out, and counted.

Validation: val_loss and the val accuracies are the contrastive loss within batches of
``--train.eval_batch_size`` clips (its chance level is ln(batch size), so it depends on that size); when the
evaluation clips fill more than one batch, the last partial batch is left out of them (a batch of one clip
would score loss 0 and accuracy 1). The retrieval scores (val_mAP@10, R@k) always use every clip.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import platform
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import audiotrain
from audiotrain.data import DataLoader
from audiotrain.datasets.caption_demo import CaptionDemoConfig, make_caption_demo
from audiotrain.datasets.captions import (
    CaptionDataset,
    CaptionFolder,
    CaptionFolderError,
    holdout_split,
    normalise_split,
    scan_caption_folder,
)
from audiotrain.distributed import collectives
from audiotrain.recipes._run import check_run_folder, clear_run_outputs, create_run_folder
from audiotrain.recipes.clap_config import (
    DEMO_EPOCHS,
    DEMO_LEARNING_RATE,
    PRESETS,
    ClapDatasetConfig,
    ClapDemoConfig,
    ClapRecipeConfig,
    ClapTrainConfig,
)
from audiotrain.recipes.clap_eval import RetrievalEvaluation, evaluate_clap
from audiotrain.recipes.clap_report import format_table, write_plots
from audiotrain.recipes.clap_task import (
    DEFAULT_FINE_TUNING_LR,
    CLAPTaskConfig,
    CLAPTrainModule,
    check_freezing_fits,
)
from audiotrain.recipes.config_cli import (
    USER_ERRORS,
    ConfigInCheckpoint,
    SettingsParser,
    add_dataclass_arguments,
    add_preset_argument,
    check_resume_folder,
    parse_bool,
    resolve_settings,
    resume_command,
)
from audiotrain.train import checkpoint as ckpt
from audiotrain.train.callbacks import ModelCheckpoint
from audiotrain.train.seeding import seed_everything

import numpy as np

if TYPE_CHECKING:
    from audiotrain.recipes.clap_cv import ClipFold

DEMO_BANNER = (
    "=" * 78 + "\n"
    "OFFLINE DEMO: a small, randomly initialised CLAP trained from scratch with a tokenizer trained on the\n"
    "captions. Nothing is downloaded; the scores below say nothing about real CLAP checkpoints.\n"
    "Fine-tune a real model with --pretrained laion/clap-htsat-unfused (or a local folder).\n" + "=" * 78
)


# ---------------------------------------------------------------------------------------------- model
@dataclass
class Bundle:
    """What a run trains: the model, its config, front end, tokenizer and the folder they came from."""

    model: Any
    config: Any
    extractor: Any
    tokenizer: Any
    source: Path
    demo: bool


def load_checkpoint(path_or_hub_id: str, max_tokens: int) -> Bundle:
    from audiotrain.features.clap import ClapFeatureExtractor
    from audiotrain.models.clap import ClapTokenizer, load_pretrained

    model, config = load_pretrained(path_or_hub_id)
    source = Path(config.source)
    extractor = ClapFeatureExtractor.from_pretrained(source)
    tokenizer = ClapTokenizer.from_pretrained(source, max_length=max_tokens)
    check_tokenizer_fits(tokenizer, config, source)
    return Bundle(model, config, extractor, tokenizer, source, demo=False)


def check_tokenizer_fits(tokenizer, config, source: Path) -> None:
    """Refuse a tokenizer whose ids (added tokens included) reach past the text model's embedding table:
    MLX does not check gather indices, so such an id gives NaN embeddings or a crash instead of an error."""
    vocab_size = config.text_config.vocab_size
    if tokenizer.vocab_size > vocab_size:
        raise ValueError(
            f"{source}: the tokenizer has {tokenizer.vocab_size} tokens (added tokens included) but the text "
            f"model's text_config.vocab_size is {vocab_size}; ids from {vocab_size} on have no embedding. Use "
            "the tokenizer the checkpoint was trained with (or resize the text embeddings before saving it)"
        )


def check_settings_fit(cfg: ClapRecipeConfig, config) -> None:
    """Settings the model's config bounds, named by their flags, before any data is read."""
    text, audio = config.text_config, config.audio_config
    longest = text.max_position_embeddings - text.pad_token_id - 1
    if cfg.dataset.max_tokens > longest:
        raise ValueError(
            f"--dataset.max_tokens {cfg.dataset.max_tokens}: the text tower accepts at most {longest} tokens "
            f"(max_position_embeddings {text.max_position_embeddings}); pass --dataset.max_tokens {longest} or less"
        )
    check_freezing_fits(cfg.task, text.num_hidden_layers, len(audio.depths))


def demo_extractor_settings() -> dict:
    """The demo's front end: 16 kHz, 2 s windows, 16 mel bands (201 frames), rand_trunc + repeatpad."""
    return {
        "feature_size": 16,
        "sampling_rate": 16000,
        "hop_length": 160,
        "max_length_s": 2,
        "fft_window_size": 512,
        "frequency_min": 50.0,
        "frequency_max": 8000.0,
        "truncation": "rand_trunc",
        "padding": "repeatpad",
    }


def demo_model_config(vocab_size: int, max_tokens: int, width: int = 64):
    """A ~0.4 M-parameter CLAP with the real architecture: 2 Swin stages on a 64x64 image, 2 text layers."""
    from audiotrain.models.clap import ClapAudioConfig, ClapConfig, ClapTextConfig

    return ClapConfig(
        text_config=ClapTextConfig(
            vocab_size=vocab_size,
            hidden_size=width,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=2 * width,
            max_position_embeddings=max_tokens + 2,  # RoBERTa positions start after the padding index
        ),
        audio_config=ClapAudioConfig(
            spec_size=64,
            num_mel_bins=16,
            window_size=4,
            patch_embeds_hidden_size=32,
            depths=(1, 1),
            num_attention_heads=(2, 4),
            hidden_size=64,
        ),
        projection_dim=width,
    )


def build_demo(captions: list[str], out: Path, cfg: ClapRecipeConfig) -> Bundle:
    """Random tiny model + tokenizer trained on `captions`; front end and tokenizer saved in ``out/demo_init``."""
    from audiotrain.features.clap import ClapFeatureExtractor
    from audiotrain.models.clap import ClapModel, ClapTokenizer

    import mlx.core as mx

    tokenizer = ClapTokenizer.train(
        captions, vocab_size=cfg.demo.vocab_size, max_length=cfg.dataset.max_tokens
    )
    extractor = ClapFeatureExtractor.from_dict(demo_extractor_settings(), source="demo front end")
    source = out / "demo_init"
    tokenizer.save_pretrained(source)
    extractor.save_pretrained(source)
    config = demo_model_config(tokenizer.vocab_size, cfg.dataset.max_tokens, cfg.demo.width)
    config.save(source / "config.json")  # what `export` rebuilds the model from
    model = ClapModel(config)  # drawn from the generators `run` seeded
    mx.eval(model.parameters())
    return Bundle(model, config, extractor, tokenizer, source, demo=True)


# ---------------------------------------------------------------------------------------------- data
def choose_splits(folder: CaptionFolder, cfg: ClapDatasetConfig, seed: int) -> tuple[list, list, str]:
    """(train clips, evaluation clips, a sentence saying how they were chosen and what was left out).

    A folder with named splits must name the training split ``--dataset.train_split`` asks for: training on
    every clip instead would put the validation and test clips into training. The one exception is the
    layout "clips without a split + an evaluation split" (e.g. side by side with a ``test/`` folder), when
    ``--dataset.train_split`` is left at its default.
    """
    splits = folder.splits
    train_name = normalise_split(cfg.train_split)
    if cfg.eval_split is not None:
        eval_name = normalise_split(cfg.eval_split)
        if eval_name not in splits:
            raise CaptionFolderError(
                f"{folder.root}: --dataset.eval_split {cfg.eval_split!r} has no clips; splits present: "
                f"{_describe_splits(folder) or 'none'}"
            )
    else:
        eval_name = next((s for s in ("validation", "test") if s in splits), None)
    unsplit = [c for c in folder.clips if c.split is None]
    default_train = normalise_split(ClapDatasetConfig().train_split)
    if train_name in splits and eval_name is not None and eval_name != train_name:
        train, held = folder.split(train_name), folder.split(eval_name)
        how = f"splits '{train_name}' / '{eval_name}'"
    elif train_name not in splits and eval_name is not None and unsplit and train_name == default_train:
        train, held = unsplit, folder.split(eval_name)
        how = f"clips without a split / split '{eval_name}'"
    elif splits and train_name not in splits:
        others = [s for s in splits if s != eval_name]
        advice = []
        if others:
            advice.append(f"pass the training split's name, e.g. --dataset.train_split {others[0]}")
            if "development" in others:
                advice[-1] += " (Clotho calls its training split 'development')"
        if unsplit and eval_name is not None:
            advice.append(
                f"leave --dataset.train_split at '{default_train}' to train on the clips without a split"
            )
        elif unsplit:
            advice.append(f"pass --dataset.eval_split {others[0]} to train on the clips without a split")
        if not advice:
            advice.append(f"the folder holds only the evaluation split '{eval_name}': add training clips")
        raise CaptionFolderError(
            f"{folder.root}: --dataset.train_split {cfg.train_split!r} names none of the folder's splits "
            f"({_describe_splits(folder)}); {', or '.join(advice)}. (Training on every clip would train on "
            "the evaluation clips too.)"
        )
    else:
        pool = folder.split(train_name) if train_name in splits else list(folder.clips)
        train, held = holdout_split(pool, cfg.eval_fraction, seed=seed)
        what = f"split '{train_name}'" if train_name in splits else "all clips"
        how = f"{what} with {len(held)} clip(s) held out at random (seed {seed})"
    used = {id(c) for c in (*train, *held)}
    left_out = Counter(c.split for c in folder.clips if id(c) not in used)
    if left_out:
        parts = [
            f"{n} without a split" if name is None else f"{n} in split '{name}'"
            for name, n in sorted(left_out.items(), key=lambda kv: (kv[0] is not None, kv[0] or ""))
        ]
        how += f"; left out: {', '.join(parts)}"
    return train, held, how


def _describe_splits(folder: CaptionFolder) -> str:
    """``"development (6 clips), test (2), validation (2)"``, plus the clips without a split, if any."""
    counts = Counter(c.split for c in folder.clips)
    parts = [f"{name} ({counts[name]}{' clips' if i == 0 else ''})" for i, name in enumerate(folder.splits)]
    if counts[None]:
        parts.append(f"{counts[None]} clip(s) without a split")
    return ", ".join(parts)


def make_loader(dataset: CaptionDataset, extractor, batch_size: int, train: bool, seed: int, workers: int):
    """Batches of ``input_features``, ``is_longer``, ``input_ids``, ``attention_mask`` (numpy → mx)."""

    def collate(items: list[dict]) -> dict:
        # Each clip's random crop comes from its own (seed, epoch, index): reproducible in any worker, and
        # the same whatever batch (or data-parallel rank) the clip lands in.
        rngs = [np.random.default_rng([int(x) for x in item["seed"]]) for item in items]
        feats = extractor([item["waveform"] for item in items], rng=rngs, train=train)
        return {
            "input_features": feats["input_features"],
            "is_longer": feats["is_longer"],
            "input_ids": np.stack([item["input_ids"] for item in items]),
            "attention_mask": np.stack([item["attention_mask"] for item in items]),
        }

    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=train,
        num_workers=workers,
        collate_fn=collate,
        # A short last batch has fewer negatives (a batch of one clip scores loss 0 and accuracy 1) and costs a
        # new compiled shape: dropped, in validation too, when the clips fill at least one whole batch. The
        # retrieval scores do not use this loader: they embed every clip.
        drop_last=len(dataset) > batch_size,
        seed=seed,
    )


def validation_note(n_clips: int, batch_size: int) -> str | None:
    """What `make_loader` leaves out of val_loss / val accuracies, in a sentence (None when nothing)."""
    left = n_clips % batch_size if n_clips > batch_size else 0
    if not left:
        return None
    return (
        f"note: val_loss and val accuracies use {n_clips - left} of the {n_clips} evaluation clips (whole batches "
        f"of --train.eval_batch_size {batch_size}; the last {left} would form a batch with fewer negatives); "
        "retrieval scores use all of them"
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
    a mistyped file name is an error, not a one-class list named after the file.
    """
    if spec is None:
        return None
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
        labels = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not labels:
            raise ValueError(f"{path}: no labels (expected one class name per line)")
        return labels
    labels = [part.strip() for part in spec.split(",") if part.strip()]
    if not labels:
        raise ValueError(f"--dataset.zero_shot_labels {spec!r}: no labels (a file or a comma-separated list)")
    return labels


def _versions() -> dict:
    import mlx.core as mx

    return {
        "audiotrain": audiotrain.__version__,
        "mlx": getattr(mx, "__version__", "unknown"),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
    }


def default_learning_rate(demo: bool) -> tuple[float, str]:
    """(the peak learning rate used when --task.learning_rate is unset, where that default comes from)."""
    if demo:
        return DEMO_LEARNING_RATE, "the demo's default learning rate; set --task.learning_rate to change it"
    return (
        DEFAULT_FINE_TUNING_LR,
        "the default for fine-tuning a checkpoint; set --task.learning_rate to change it",
    )


def resolve_training(cfg: ClapRecipeConfig, demo: bool, n_train: int) -> tuple[CLAPTaskConfig, int, int]:
    """(task config with its defaults filled in, epochs, planned optimizer steps).

    Defaults differ between fine-tuning a checkpoint and training the demo model from scratch: a
    from-scratch model needs a larger learning rate and must learn its BatchNorm statistics (frozen random
    statistics leave the log-mel input unnormalised, and the embeddings collapse).
    """
    task_cfg = cfg.task
    if task_cfg.learning_rate is None:
        task_cfg = dataclasses.replace(task_cfg, learning_rate=default_learning_rate(demo)[0])
    if task_cfg.batchnorm_eval is None:
        task_cfg = dataclasses.replace(task_cfg, batchnorm_eval=not demo)
    epochs = cfg.train.epochs or (DEMO_EPOCHS if demo else 5)
    # Batches per epoch as make_loader builds them (the short last batch is dropped); the Trainer also steps
    # on the last batch of an epoch when it ends an incomplete accumulation window.
    batches = max(1, n_train // cfg.train.batch_size)
    steps_per_epoch = -(-batches // cfg.train.accumulate_grad_batches)
    total = epochs * steps_per_epoch
    if cfg.train.max_steps is not None:
        total = min(total, cfg.train.max_steps)
    if task_cfg.total_steps is None:
        task_cfg = dataclasses.replace(task_cfg, total_steps=total)
    elif task_cfg.total_steps < total:
        print(
            f"warning: --task.total_steps {task_cfg.total_steps} is less than the {total} optimizer steps planned: "
            f"the learning rate stays at --task.min_learning_rate ({task_cfg.min_learning_rate:g}) for the last "
            f"{total - task_cfg.total_steps} steps"
        )
    if task_cfg.warmup_steps > task_cfg.total_steps:
        print(
            f"warning: --task.warmup_steps {task_cfg.warmup_steps} is more than the {task_cfg.total_steps} steps of "
            f"the schedule: the warmup is cut to {task_cfg.total_steps} steps"
        )
    return task_cfg, epochs, total


def export_bundle(bundle: Bundle, out_dir: Path) -> Path:
    """`bundle`'s model, with its front end and tokenizer, as a Hugging Face folder (``transformers`` loads it)."""
    from audiotrain.models.clap import save_pretrained

    return save_pretrained(
        bundle.model, bundle.config, out_dir, extractor_dir=bundle.source, tokenizer=bundle.tokenizer
    )


def check_resume_matches(folder: Path, task: CLAPTrainModule) -> None:
    """Raise a short `CheckpointError` when the checkpoint's model arrays do not fit `task` (e.g. a checkpoint
    of another recipe or another CLAP size), before the evaluation and training start. The same check the
    Trainer makes when it loads, only earlier."""
    model_file = folder / ckpt.MODEL_FILE
    ckpt.check_arrays(ckpt.read_arrays(model_file), ckpt.flat(task.parameters()), "CLAP model", model_file)


def load_task_weights(task: CLAPTrainModule, folder: Path) -> None:
    """Load the model arrays of trainer checkpoint `folder` into `task` (names and shapes checked)."""
    model_file = folder / ckpt.MODEL_FILE
    task.update(ckpt.checked_tree(ckpt.read_arrays(model_file), task.parameters(), "CLAP model", model_file))


def write_run_config(
    path: Path, cfg: ClapRecipeConfig, demo: bool, folder: CaptionFolder, bundle: Bundle, how: str, argv
) -> None:
    """Everything needed to reproduce the run: resolved config, data and model sources, versions, command."""
    record = {
        "config": dataclasses.asdict(cfg),
        "demo": demo,
        "data_folder": str(folder.root),
        "model_source": str(Path(bundle.source).resolve()),  # absolute: `export` may run from elsewhere
        "splits": how,
        "versions": _versions(),
        "command": [sys.executable, "-m", "audiotrain.recipes.clap", *(argv or [])],
    }
    path.write_text(json.dumps(record, indent=2) + "\n")


#: What a run writes in its folder: ``--overwrite`` removes these (and only these) before the new run.
RUN_OUTPUTS = (
    "config.json",
    "data_report.txt",
    "history.json",
    "retrieval.json",
    "checkpoints",
    "plots",
    "hf_model",
    "demo_init",
)


def demo_data_folder(cfg: ClapRecipeConfig) -> Path:
    """The generated folder of captioned demo clips (``--demo.clips``, ``--train.seed``), made once and cached."""
    cache = Path(cfg.demo.folder or Path.home() / ".cache" / "audiotrain")
    demo_config = CaptionDemoConfig(n_clips=cfg.demo.clips, seed=cfg.train.seed)
    main = collectives.is_main_process()
    if not main:  # rank 0 generates (or finds) the demo clips; then the others read them
        collectives.barrier()
    data = make_caption_demo(cache / f"caption_demo-n{cfg.demo.clips}-seed{cfg.train.seed}", demo_config)
    if main:
        collectives.barrier()
    print(f"demo data: {data}")
    return data


# ---------------------------------------------------------------------------------------------- run
def run(cfg: ClapRecipeConfig, argv: list[str] | None = None, fold: ClipFold | None = None) -> dict:
    """`run_job` on every rank of a data-parallel job (mlx.launch): rank 0 alone prints and writes; the
    other ranks train with it (--train.batch_size is per process) and return after the fit."""
    if collectives.is_main_process():
        return run_job(cfg, argv, fold)
    with contextlib.redirect_stdout(io.StringIO()):
        return run_job(cfg, argv, fold)


def run_job(cfg: ClapRecipeConfig, argv: list[str] | None = None, fold: ClipFold | None = None) -> dict:
    """Everything the command does.

    With a cross-validation ``fold`` (see `audiotrain.recipes.clap_cv`), its clips replace the split choice:
    its training clips train, its validation clips validate (val_loss, the per-epoch retrieval scores and
    the best checkpoint), and "before" / "after" score its held-out clips.

    Returns
    -------
    dict with ``run_dir``, ``before`` / ``after`` (evaluation scores), ``export`` (the Hugging Face folder),
    ``weights`` (which weights ``after`` and the export hold), ``history``, ``task`` (the `CLAPTrainModule`,
    holding those weights) and ``eval_set``.
    """
    from audiotrain import Trainer

    demo = cfg.pretrained is None
    if not demo and cfg.data is None:
        raise ValueError("--data FOLDER is required with --pretrained (a folder of audio + captions)")
    if cfg.task.learning_rate is None:
        cfg.task.check_min_learning_rate(*default_learning_rate(demo))
    # Cheap checks first: a wrong --resume folder or labels file fails before data and model are loaded.
    resume = check_resume_folder(cfg.resume) if cfg.resume else None
    labels = read_labels(cfg.dataset.zero_shot_labels)
    out = Path(cfg.out) if cfg.out else None  # None: a new runs/clap-<date>-<time> folder, made below
    replace = out is not None and check_run_folder(out, "--out", cfg.overwrite, resume)
    if demo:
        check_settings_fit(cfg, demo_model_config(1, cfg.dataset.max_tokens, cfg.demo.width))
        print(DEMO_BANNER)
    seed_everything(cfg.train.seed)  # whatever is drawn before the Trainer seeds at `fit`

    # Data folder (generated in the demo unless --data is given).
    main = collectives.is_main_process()
    data = cfg.data if cfg.data is not None else demo_data_folder(cfg)

    # The sampling rate comes from the front end, so the model side is set up first (except the demo
    # tokenizer, which is trained on the captions found below).
    bundle = None if demo else load_checkpoint(cfg.pretrained, cfg.dataset.max_tokens)
    if bundle is not None:
        check_settings_fit(cfg, bundle.config)
    sampling_rate = bundle.extractor.sampling_rate if bundle else demo_extractor_settings()["sampling_rate"]
    folder = scan_caption_folder(data, sampling_rate=sampling_rate)
    report = folder.report()
    print(report)
    if fold is None:
        train_clips, eval_clips, how = choose_splits(folder, cfg.dataset, cfg.train.seed)
        test_clips = eval_clips
        print(f"training on {len(train_clips)} clips, evaluating on {len(eval_clips)} ({how})")
    else:
        train_clips, eval_clips, test_clips, how = fold.select(folder)
        print(
            f"training on {len(train_clips)} clips, validating on {len(eval_clips)}, scoring the "
            f"{len(test_clips)} held-out clips ({how})"
        )
    if len(train_clips) < 2:
        raise CaptionFolderError(f"{folder.root}: only {len(train_clips)} training clip(s); need at least 2")
    # The checks passed: only now is the run folder created (or a previous run in it replaced).
    if replace and main:
        clear_run_outputs(out, RUN_OUTPUTS)
    out = Path(
        collectives.broadcast_from_main(
            str(create_run_folder(out, "clap-demo" if demo else "clap")) if main else None
        )
    )
    if main:
        (out / "data_report.txt").write_text(report + "\n")
    if bundle is None:
        # The other ranks build the same demo tokenizer and front end in a folder of their own (rank 0's
        # weights reach them at fit).
        private = out if main else Path(tempfile.mkdtemp(prefix="audiotrain-rank-"))
        bundle = build_demo([c for clip in train_clips for c in clip.captions], private, cfg)

    task_cfg, epochs, total = resolve_training(cfg, demo, len(train_clips))
    resolved = dataclasses.replace(cfg, task=task_cfg, train=dataclasses.replace(cfg.train, epochs=epochs))
    if main:
        write_run_config(out / "config.json", resolved, demo, folder, bundle, how, argv)
    extractor, tokenizer = bundle.extractor, bundle.tokenizer
    crop = None if extractor.truncation == "fusion" else extractor.nb_max_samples
    common = dict(
        sampling_rate=sampling_rate,
        crop_samples=crop,
        seed=cfg.train.seed,
        cache_audio=cfg.dataset.cache_audio,
    )
    train_set = CaptionDataset(train_clips, tokenizer, train=True, **common)
    eval_set = CaptionDataset(eval_clips, tokenizer, train=False, **common)
    test_set = eval_set if fold is None else CaptionDataset(test_clips, tokenizer, train=False, **common)
    workers = cfg.dataset.num_workers
    train_loader = make_loader(train_set, extractor, cfg.train.batch_size, True, cfg.train.seed, workers)
    val_loader = make_loader(eval_set, extractor, cfg.train.eval_batch_size, False, cfg.train.seed, workers)
    note = validation_note(len(eval_set), cfg.train.eval_batch_size)
    if note:
        print(note)

    task = CLAPTrainModule(bundle.model, task_cfg)
    total_params, trainable = task.parameter_counts()
    print(f"model: {total_params:,} parameters, {trainable:,} trainable; {total} optimizer steps planned")
    if resume is not None:
        check_resume_matches(resume, task)

    if labels is None and all(c.label is not None for c in folder.clips):
        labels = sorted(
            {c.label for c in folder.clips}
        )  # every class of the folder, not only the held-out ones
    if labels is not None and not any(c.label is not None for c in test_clips):
        print("note: no evaluation clip has a 'label', so zero-shot classification is not scored")

    def scores_on(dataset: CaptionDataset) -> dict:
        return evaluate_clap(
            task.clap,
            dataset,
            extractor,
            tokenizer,
            labels=labels,
            prompt_template=cfg.dataset.prompt_template,
            batch_size=cfg.train.eval_batch_size,
        )

    evaluate = lambda: scores_on(eval_set)  # noqa: E731  (each validation: picks the best checkpoint)
    score_held_out = lambda: scores_on(test_set)  # noqa: E731  (before / after; = eval_set unless a cv fold)
    before = score_held_out() if main else {}
    if main:
        print("retrieval before fine-tuning:\n" + format_table(before, None))
    if len(test_clips) < FEW_EVAL_CLIPS:
        print(
            f"note: only {len(test_clips)} evaluation clips: text→audio R@k is k/{len(test_clips)} by chance "
            f"(R@10 is 1.0 for any model with 10 or fewer); use {FEW_EVAL_CLIPS}+ clips for scores that compare models"
        )

    callbacks: list = []  # the DataLoader tells train_set the epoch (CaptionDataset.set_epoch)
    if cfg.train.retrieval_every_epoch:
        callbacks.append(RetrievalEvaluation(evaluate))
        best = ModelCheckpoint(dirpath=out / "checkpoints", monitor="val_mAP@10", mode="max", save_last=True)
    else:
        best = ModelCheckpoint(dirpath=out / "checkpoints", monitor="val_loss", mode="min", save_last=True)
    callbacks += [best, ConfigInCheckpoint(dataclasses.asdict(resolved))]  # the checkpoints hold the config
    trainer = Trainer(
        max_epochs=epochs,
        max_steps=cfg.train.max_steps,
        gradient_clip_val=cfg.train.gradient_clip,
        accumulate_grad_batches=cfg.train.accumulate_grad_batches,
        precision=cfg.train.precision,
        compile=cfg.train.compile,
        seed=cfg.train.seed,
        default_root_dir=out,
        enable_progress_bar=cfg.train.progress_bar,
        log_every_n_steps=cfg.train.log_every_n_steps,
        callbacks=callbacks,
    )
    trainer.resume_hint = None  # the recipe prints its own command line below
    trainer.fit(task, train_loader, val_loader, ckpt_path=str(resume) if resume else None)
    if not main:  # the other ranks' part ends with the fit
        return {"run_dir": out, "history": trainer.history, "task": task, "interrupted": trainer.interrupted}
    trainer.export_history(out / "history.json")
    if trainer.interrupted:
        command = resume_command("audiotrain.recipes.clap", argv or [], trainer.interrupted_checkpoint)
        print(f"training was interrupted (Ctrl-C); evaluating now. Continue training with:\n  {command}")

    # "after" and hf_model/ are the weights the run reports as best (the final ones when none was kept).
    if best.best_model_path and Path(best.best_model_path).is_dir():
        load_task_weights(task, Path(best.best_model_path))
        weights = f"best checkpoint by {best.monitor} ({best.best_model_score:.4f}): {best.best_model_path}"
    else:
        weights = "final weights (no checkpoint was kept by validation)"
    after = score_held_out()
    print(f"retrieval on the evaluation clips (after: {weights}):\n" + format_table(before, after))
    results = {
        "before": before,
        "after": after,
        "after_weights": weights,
        "n_eval_clips": len(test_set),
        "n_eval_captions": len(test_set.captions),
    }
    (out / "retrieval.json").write_text(json.dumps(results, indent=2) + "\n")
    write_plots(trainer.history, results, out / "plots")

    export = export_bundle(bundle, out / "hf_model")
    print(f"run folder: {out}\nexported Hugging Face model: {export} ({weights})")
    print(
        "export another checkpoint with: python -m audiotrain.recipes.clap export "
        f"--checkpoint {out / 'checkpoints' / 'last'} --out DIR"
    )
    if demo:
        print("(offline demo: a tiny model trained from scratch on synthetic sounds)")
    return {
        "run_dir": out,
        "before": before,
        "after": after,
        "export": export,
        "weights": weights,
        "history": trainer.history,
        "task": task,
        "eval_set": test_set,
        "interrupted": trainer.interrupted,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = SettingsParser(
        prog="python -m audiotrain.recipes.clap",
        description=__doc__,
        epilog="Example: python -m audiotrain.recipes.clap --data my_sounds/ --pretrained laion/clap-htsat-unfused "
        "--train.epochs 10 --task.learning_rate 2e-5 --task.freeze_text true\n\n"
        "Export any checkpoint of a run as a Hugging Face folder:\n"
        "  python -m audiotrain.recipes.clap export --checkpoint RUN/checkpoints/last --out DIR  (see export --help)\n"
        "Cross-validate, grouped by clip (see cv --help):\n"
        "  python -m audiotrain.recipes.clap cv --folds 5 --data my_sounds/ --pretrained laion/clap-htsat-unfused",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        default=None,
        help="YAML or JSON file with any of the settings below (flags win), or a run's config.json (repeats it)",
    )
    add_preset_argument(parser, PRESETS)
    add_dataclass_arguments(parser, ClapRecipeConfig(), skip=frozenset({"overwrite"}))
    parser.add_argument(
        "--overwrite",
        dest="overwrite",
        nargs="?",
        const=True,
        type=parse_bool,
        default=argparse.SUPPRESS,
        help="replace a previous run in --out (its checkpoints, hf_model/, history.json, ...); without it an "
        "--out that holds files is refused, unless --resume names a checkpoint inside it",
    )
    return parser


def parse_config(argv: list[str] | None = None) -> ClapRecipeConfig:
    return parse_arguments(build_parser(), argv)[0]


def parse_arguments(
    parser: argparse.ArgumentParser, argv: list[str] | None
) -> tuple[ClapRecipeConfig, argparse.Namespace]:
    """(the resolved settings, every parsed argument), from a `build_parser` parser (``cv`` adds ``--folds``)."""
    args = parser.parse_args(argv)
    try:  # defaults < --preset < the --config file < flags
        return resolve_settings(ClapRecipeConfig(), PRESETS, args.preset, args.config, args), args
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
        raise  # unreachable: parser.error exits


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "export":
        from audiotrain.recipes.clap_export import main as export_main

        return export_main(argv[1:])
    if argv and argv[0] == "cv":
        from audiotrain.recipes.clap_cv import main as cv_main

        return cv_main(argv[1:])
    cfg = parse_config(argv)
    try:
        result = run(cfg, argv)
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 130 if result["interrupted"] else 0  # 130: as a shell reports a command Ctrl-C stopped


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "Bundle",
    "ClapDatasetConfig",
    "ClapDemoConfig",
    "ClapRecipeConfig",
    "ClapTrainConfig",
    "build_parser",
    "main",
    "run",
]
