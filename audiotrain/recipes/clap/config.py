"""Configuration of the CLAP recipe: one dataclass per section; field help doubles as command-line help.

Sections map to flags: ``--data``, ``--pretrained``, ``--dataset.eval_split``, ``--task.learning_rate``,
``--train.batch_size``, ``--demo.clips``, ``--logger tensorboard,mlflow`` and ``--logger.project`` (see
`audiotrain.recipes.config_cli` and `audiotrain.train.loggers.LoggerConfig`); a YAML/JSON file with the same
nesting fills them too (``--config run.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from audiotrain._keywords import suggesting_keywords
from audiotrain.datasets.captions import normalise_split
from audiotrain.metrics.retrieval import DEFAULT_PROMPT_TEMPLATE, inserts_the_label_once
from audiotrain.recipes.clap.task import CLAPTaskConfig
from audiotrain.recipes.config_cli import (
    MAX_BATCH_SIZE,
    MAX_DEMO_ITEMS,
    MAX_EPOCHS,
    MAX_STEPS,
    MAX_WORKERS,
    PROGRESS_BAR_HELP,
    SEED_MAX,
    SettingError,
    check_setting,
    config_from_preset,
    settle_fields,
)
from audiotrain.train import flags
from audiotrain.train.loggers.config import LoggerConfig

DEMO_LEARNING_RATE = 3e-4
DEMO_EPOCHS = 25
#: Tokens per caption when --dataset.max_tokens is not given (LAION-CLAP's 77), lowered to what a checkpoint's
#: text tower takes: a default is no request the run must refuse.
DEFAULT_MAX_TOKENS = 77
#: Most BPE tokens the demo's tokenizer may learn, and the widest demo model: a tiny from-scratch model
#: (64 wide by default); 10**12 reached MLX as an embedding size and ended in an OverflowError traceback.
MAX_DEMO_VOCAB = 65_536
MAX_DEMO_WIDTH = 4096


def _opt(default, help: str, **extra):
    return field(default=default, metadata={"help": help, **extra})


@dataclass
class ClapDatasetConfig:
    """Data: splits, crops, tokens, loading."""

    train_split: str = _opt(
        "train",
        "split that trains (metadata 'split' column or a train/ folder); a folder with named splits must have it "
        "(Clotho: development)",
    )
    eval_split: str | None = _opt(
        None,
        "split that evaluates; if unset: validation, else test (other than the training split), else a "
        "held-out part",
    )
    test_split: str | None = _opt(
        None,
        "split scored before and after training, on the best checkpoint the evaluation split chose (if unset: "
        "the evaluation split, which then both chooses and scores it). Clotho: --dataset.eval_split "
        "validation --dataset.test_split evaluation",
    )
    eval_fraction: float = _opt(
        0.2, "share of clips held out (seeded) when the folder has no evaluation split"
    )
    max_tokens: int | None = _opt(
        None,
        "tokens per caption, <s> and </s> included (if unset: 77 as in LAION-CLAP, or the most a "
        "checkpoint's text tower takes when that is fewer)",
    )
    num_workers: int = _opt(2, "data-loading threads (decoding, resampling, log-mel)")
    cache_audio: bool = _opt(False, "keep decoded clips in memory (small folders)")
    zero_shot_labels: str | None = _opt(
        None,
        "zero-shot classes: a file with one per line, or a comma-separated list (if unset: the clips' labels)",
    )
    prompt_template: str = _opt(DEFAULT_PROMPT_TEMPLATE, "zero-shot prompt, '{}' is replaced by the class")

    def __post_init__(self):
        # Named by field here; merge_config names them as flags (--dataset.max_tokens) when set through one.
        check_setting("eval_fraction", self.eval_fraction, above=0, below=1)
        if self.test_split is not None:
            # (as `choose_splits` compares them: "evaluation" is the split "test")
            others = {normalise_split(s) for s in (self.train_split, self.eval_split) if s is not None}
            if normalise_split(self.test_split) in others:
                raise SettingError(
                    "test_split",
                    self.test_split,
                    "a split other than train_split and eval_split (the clips scored after training must be "
                    "neither trained on nor the ones that chose the checkpoint)",
                )
        check_setting(
            "max_tokens",
            self.max_tokens,
            integer=True,
            at_least=3,
            why="<s>, a token and </s>",
            optional=True,
        )
        check_setting("num_workers", self.num_workers, integer=True, at_least=0, at_most=MAX_WORKERS)
        # Without its '{}' every class would get the same prompt, and zero-shot scores would be chance.
        if not inserts_the_label_once(self.prompt_template):
            raise SettingError(
                "prompt_template",
                self.prompt_template,
                "a text holding '{}' once (where the class name goes)",
            )

    def same_split_warning(self, default_eval_split: str | None = None) -> str | None:
        """A warning line where the evaluation split is the training split, else None. Allowed (a check that
        the model can fit its own clips), but every score then measures memory, not generalisation, and the
        run exited 0 without a word. ``default_eval_split``: the split chosen with eval_split unset, known
        once the folder is scanned (`default_eval_split` in data.py: the training split only where the folder
        has no other)."""
        eval_split = self.eval_split if self.eval_split is not None else default_eval_split
        # (as `choose_splits` compares them: "Train" is the split "train")
        if eval_split is None or normalise_split(eval_split) != normalise_split(self.train_split):
            return None
        which = (
            f"--dataset.eval_split {self.eval_split} is the training split"
            if self.eval_split is not None
            else f"--dataset.train_split {self.train_split} leaves the folder no other split to evaluate on"
        )
        return (
            f"warning: {which}: validation, the "
            "before/after retrieval scores and the best checkpoint are all measured on clips it trains on "
            "(an overfitting check, not a measure of how it does on new clips)"
        )


def _check_paths(section: object, names: tuple[str, ...]) -> None:
    """Refuse an empty path (``--out "$RUN"`` with RUN unset): it would mean the current folder, or unset."""
    for name in names:
        value = getattr(section, name)
        if isinstance(value, str) and not value.strip():
            raise SettingError(name, value, "a path, not empty (leave the setting out for its default)")


@dataclass
class ClapTrainConfig:
    """Training loop."""

    epochs: int | None = _opt(None, "epochs; if unset: 5 (fine-tuning) or 25 (the from-scratch demo)")
    max_steps: int | None = _opt(
        None, "stop after this many optimizer steps (whichever of epochs/steps ends first)"
    )
    batch_size: int = _opt(8, "clips per batch (the InfoNCE negatives are the other clips of the batch)")
    eval_batch_size: int = _opt(
        8,
        "clips per batch in evaluation. val_loss / val accuracies are the contrastive loss within batches of this "
        "size (so they depend on it) over whole batches only (a partial last batch is left out when there are "
        "more clips than one batch); retrieval scores (val_mAP@10, R@k) use every clip",
    )
    gradient_clip: float | None = _opt(None, "clip the global gradient norm to this value")
    accumulate_grad_batches: int = _opt(
        1,
        "average gradients over this many batches per step (each batch's contrastive loss still takes its "
        "negatives from that batch alone: not a larger contrastive batch)",
    )
    precision: str = _opt(
        "32", "'32', 'bf16-mixed' or 'bf16-true' (bf16 is slower on CPU)", number_as_text=True
    )
    seed: int = _opt(42, "seed of the split, shuffling, crops, caption choice and initialisation")
    compile: bool = _opt(True, "compile the training step with mx.compile")
    retrieval_every_epoch: bool = _opt(
        True,
        "score retrieval at every validation (val_mAP@10, ... in history.json) and keep the checkpoint with the "
        "best val_mAP@10 (false: only before/after, and the best val_loss)",
    )
    progress_bar: bool = _opt(True, PROGRESS_BAR_HELP)
    log_every_n_steps: int = _opt(10, "log training metrics every n optimizer steps")
    processes: int = _opt(
        0,
        "on a CPU: processes to train in, one per core, the batch split between them (0: one per core, up to "
        "4, when an MPI is installed; 1: this process alone)",
    )

    def __post_init__(self):
        # Everything the Trainer or the loaders would reject, at parsing (before data or model load).
        check_setting("epochs", self.epochs, integer=True, at_least=1, at_most=MAX_EPOCHS, optional=True)
        check_setting("max_steps", self.max_steps, integer=True, at_least=1, at_most=MAX_STEPS, optional=True)
        # Under a launcher the user started, the batch sizes are each rank's and the loss gathers the ranks'
        # pairs, so 1 a rank still has negatives (a short-of-memory run of batch 1 on each of 8 GPUs); in the
        # recipe's own processes (launched_processes) they are the whole batch, split between them.
        from audiotrain.distributed.local import in_launched_job, launched_processes

        per_rank = launched_processes() == 1 and in_launched_job()
        for name in ("batch_size", "eval_batch_size"):
            check_setting(
                name, getattr(self, name), integer=True, at_least=1 if per_rank else 2,
                at_most=MAX_BATCH_SIZE,
                why="contrastive learning needs negatives in the batch: over one pair the loss is 0"
                + ("" if per_rank else "; under a launcher of 2+ processes it is each one's, and 1 is taken"),
            )  # fmt: skip
        check_setting(
            "accumulate_grad_batches",
            self.accumulate_grad_batches,
            integer=True,
            at_least=1,
            at_most=MAX_BATCH_SIZE,
        )
        check_setting(
            "log_every_n_steps", self.log_every_n_steps, integer=True, at_least=1, at_most=MAX_STEPS
        )
        check_setting("gradient_clip", self.gradient_clip, above=0, optional=True)
        check_setting("seed", self.seed, integer=True, at_least=0, at_most=SEED_MAX)
        check_setting("processes", self.processes, integer=True, at_least=0)
        try:  # (recorded as the setting it names: 'bf16' is bf16-mixed, or `runs compare` sees two)
            self.precision = flags.precision(str(self.precision))
        except ValueError:
            raise SettingError("precision", self.precision, "'32', 'bf16-mixed' or 'bf16-true'") from None


@dataclass
class ClapDemoConfig:
    """The offline demo (only without --pretrained)."""

    clips: int = _opt(80, "clips in the generated demo folder")
    folder: str | None = _opt(
        None,
        "where the demo folder is generated and cached (if unset: demo/clap in $AUDIOTRAIN_CACHE_DIR, else "
        "$XDG_CACHE_HOME/audiotrain, else ~/.cache/audiotrain, where `python -m audiotrain cache` lists it)",
        path=True,
    )
    vocab_size: int = _opt(400, "BPE vocabulary trained on the captions")
    width: int = _opt(64, "width of the tiny model's text tower and projections")

    def __post_init__(self):
        settle_fields(self)  # folder=Path(...) as text
        check_setting(
            "clips", self.clips, integer=True, at_least=2, at_most=MAX_DEMO_ITEMS,
            why="a training and an evaluation clip at least",
        )  # fmt: skip
        check_setting("vocab_size", self.vocab_size, integer=True, at_least=1, at_most=MAX_DEMO_VOCAB)
        check_setting("width", self.width, integer=True, at_least=4, at_most=MAX_DEMO_WIDTH)
        if self.width % 4:
            raise SettingError(
                "width", self.width, "a multiple of 4 (the demo's text tower has 4 attention heads)"
            )
        _check_paths(self, ("folder",))


@suggesting_keywords(
    instead={"preset": "a preset is applied by ClapRecipeConfig.from_preset({value!r}, **overrides)"}
)
@dataclass
class ClapRecipeConfig:
    """Fine-tune CLAP on a folder of audio and captions."""

    # path=True: a leading ~ is the home folder, from a flag or a file alike (`config_cli.home_expanded`).
    data: str | None = _opt(
        None, "folder of audio + captions (clip.wav + clip.txt, or metadata.csv/jsonl)", path=True
    )
    pretrained: str | None = _opt(
        None,
        "CLAP checkpoint: a local Hugging Face folder or a hub id (downloaded, or read from the Hugging Face "
        "cache offline)",
        path=True,
    )
    out: str | None = _opt(
        None, "run folder (if unset: runs/clap-<time> or runs/clap-demo-<time>)", path=True
    )
    resume: str | None = _opt(
        None,
        "resume training from a checkpoint folder (e.g. RUN/checkpoints/last; with --out RUN it goes on in RUN)",
        path=True,
    )
    overwrite: bool = _opt(False, "replace a previous run in --out (else an --out holding files is refused)")
    dataset: ClapDatasetConfig = field(default_factory=ClapDatasetConfig)
    task: CLAPTaskConfig = field(default_factory=CLAPTaskConfig)
    train: ClapTrainConfig = field(default_factory=ClapTrainConfig)
    demo: ClapDemoConfig = field(default_factory=ClapDemoConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)

    def __post_init__(self):
        settle_fields(self)  # out=Path(...) as text; train={...} as a ClapTrainConfig, or refused
        _check_paths(self, ("data", "pretrained", "out", "resume"))

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> ClapRecipeConfig:
        """The settings of ``--preset NAME`` (one of `PRESETS`), then `overrides` as flags would give them:
        ``ClapRecipeConfig.from_preset("quick_test", data="clips", train={"epochs": 3})`` keeps the preset's
        other train settings (``**{"train.epochs": 3}``, the flag's dotted name, does the same). An unknown
        preset or override is a ValueError naming it (`config_cli.config_from_preset`)."""
        return config_from_preset(cls(), PRESETS, name, overrides)


#: The shipped presets (``--preset NAME``, or ``preset: NAME`` in a ``--config`` file): nested changes to the
#: defaults above.
PRESETS: dict[str, dict[str, Any]] = {
    # Seconds: one epoch of a tiny uncompiled demo model on 12 clips; checks a setup end to end.
    "quick_test": {
        "dataset": {"max_tokens": 24, "num_workers": 0},
        "train": {
            "epochs": 1,
            "batch_size": 4,
            "eval_batch_size": 4,
            "compile": False,
            "progress_bar": False,
            "retrieval_every_epoch": False,
        },
        "demo": {"clips": 12, "width": 16},
    },
    # Short iterations: 3 epochs (fine-tuning) on the demo's default data.
    "development": {"train": {"epochs": 3}},
    # Real data (thousands of captioned clips, a pretrained checkpoint): larger batches (more InfoNCE
    # negatives), a warmup, clipped gradients, and parallel decoding.
    "production": {
        "dataset": {"num_workers": 4},
        "task": {"warmup_steps": 100},
        "train": {"epochs": 10, "batch_size": 32, "eval_batch_size": 32, "gradient_clip": 1.0},
    },
}
