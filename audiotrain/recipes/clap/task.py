"""The CLAP fine-tuning task: LAION's symmetric InfoNCE on a `ClapModel`, with freezing options.

What LAION-CLAP's training does and this task reproduces:

- Loss: cross-entropy of ``exp(logit_scale_a) * audio @ text.T`` against the diagonal, in both directions
  (audio→text and text→audio), averaged. Both directions use ``logit_scale_a``; ``logit_scale_t`` is only
  used by LAION's MLP loss and is left untouched here.
- After every optimizer step the logit scales are clamped to ``[0, ln 100]`` (a temperature of at most 100).
- Weight decay only on matrices: biases, norms and logit scales (``ndim < 2``) are not decayed.
- The optimizer is PyTorch's AdamW (betas 0.9/0.999, eps 1e-8, decoupled decay) with its bias correction:
  MLX's AdamW leaves bias correction off by default, which makes the first steps ~3x larger
  (``0.1 / sqrt(0.001)``) than LAION's.

For fine-tuning with small batches the audio tower's BatchNorm layers stay in eval mode (running statistics
frozen), so a batch of 8 cannot drag the statistics learnt on millions of clips.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from audiotrain.distributed import collectives
from audiotrain.models.clap import check_token_ids
from audiotrain.models.clap.model import ClapModel
from audiotrain.recipes.config_cli import MAX_STEPS, SettingError, check_setting
from audiotrain.train.module import OptimizerConfig, TrainModule
from audiotrain.train.schedulers import WarmupCosineScheduler

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim

LOGIT_SCALE_MAX = math.log(100.0)
DEFAULT_FINE_TUNING_LR = 1e-5


def clap_contrastive_loss(
    audio_embeds: mx.array, text_embeds: mx.array, logit_scale: mx.array, valid: mx.array | None = None
) -> tuple[mx.array, dict[str, mx.array]]:
    """LAION-CLAP's symmetric InfoNCE for a batch of matching (audio, text) pairs.

    Parameters
    ----------
    audio_embeds, text_embeds : mx.array, shape [B, D]
        L2-normalised embeddings; row i of each is a matching pair, every other row a negative.
    logit_scale : mx.array, scalar
        The multiplicative scale, i.e. ``exp(logit_scale_a)``.
    valid : mx.array, shape [B], bool, optional
        False on padding rows (a data-parallel shard's repeats of other rows): they are left out, as if the
        batch held only the real rows. Their columns are no query's candidates, and the means (loss and
        accuracies) are over the real rows. None: every row is real.

    Returns
    -------
    loss : mx.array, scalar
        ``(CE(logits_per_audio, arange) + CE(logits_per_text, arange)) / 2``.
    metrics : dict
        ``audio_accuracy`` (fraction of clips whose own caption scores highest), ``text_accuracy`` (the
        reverse) and ``logit_scale``.
    """
    # In float32 whatever the training precision: a bf16 softmax over the batch loses the small logit
    # differences, and one explicit cast of the scale (used by the loss and returned as a metric) avoids an
    # MLX compile bug: a bf16 value cast to float32 both inside the loss (implicitly, by type promotion) and in
    # an output of `mx.compile(mx.value_and_grad(f))` fails with "IndexError: _Map_base::at" (MLX 0.32).
    audio_embeds, text_embeds = audio_embeds.astype(mx.float32), text_embeds.astype(mx.float32)
    logit_scale = logit_scale.astype(mx.float32)
    logits_per_audio = logit_scale * (audio_embeds @ text_embeds.T)  # [B_audio, B_text]
    logits_per_text = logits_per_audio.T
    labels = mx.arange(logits_per_audio.shape[0])
    if valid is not None:
        return _loss_over_valid_rows(logits_per_audio, labels, valid, logit_scale)
    loss_audio = nn.losses.cross_entropy(logits_per_audio, labels, reduction="mean")
    loss_text = nn.losses.cross_entropy(logits_per_text, labels, reduction="mean")
    metrics = {
        "audio_accuracy": mx.mean(mx.argmax(logits_per_audio, axis=1) == labels),
        # Read down logits_per_audio's columns, not along logits_per_text's rows: the same numbers, but for a
        # batch of one those rows are the same expression as audio_accuracy's, and two equal outputs of
        # `mx.compile(mx.value_and_grad(f))` fail with "IndexError: _Map_base::at" (MLX 0.32).
        "text_accuracy": mx.mean(mx.argmax(logits_per_audio, axis=0) == labels),
        "logit_scale": logit_scale,
    }
    return (loss_audio + loss_text) / 2, metrics


def _loss_over_valid_rows(
    logits_per_audio: mx.array, labels: mx.array, valid: mx.array, logit_scale: mx.array
) -> tuple[mx.array, dict[str, mx.array]]:
    """`clap_contrastive_loss` over the rows where `valid` is True (see there)."""
    # Row i's candidates: the real rows' columns, and its own (a padding row's cross-entropy then stays
    # finite; it is weighed 0, and a -inf target would make its gradient NaN).
    keep = valid[None, :] | (labels[:, None] == labels[None, :])  # [query, candidate]
    per_audio = mx.where(keep, logits_per_audio, -math.inf)
    per_text = mx.where(keep, logits_per_audio.T, -math.inf)
    weight = valid.astype(mx.float32)
    count = mx.sum(weight)

    def mean(values: mx.array) -> mx.array:
        return mx.sum(weight * values) / count

    loss_audio = mean(nn.losses.cross_entropy(per_audio, labels))
    loss_text = mean(nn.losses.cross_entropy(per_text, labels))
    metrics = {
        "audio_accuracy": mean(mx.argmax(per_audio, axis=1) == labels),
        # Down the columns of logits_per_audio, as in clap_contrastive_loss (the MLX compile bug there).
        "text_accuracy": mean(mx.argmax(mx.where(keep.T, logits_per_audio, -math.inf), axis=0) == labels),
        "logit_scale": logit_scale,
    }
    return (loss_audio + loss_text) / 2, metrics


class AdamWMatricesOnly(optim.AdamW):
    """AdamW whose weight decay skips parameters with fewer than 2 dimensions.

    LAION excludes biases, LayerNorm/BatchNorm parameters and the logit scales from weight decay; all of
    them (and only them, in CLAP) are vectors or scalars. Bias correction is on by default, as in
    ``torch.optim.AdamW`` (MLX's own default is off).
    """

    def __init__(self, learning_rate, *, bias_correction: bool = True, **kwargs):
        super().__init__(learning_rate, bias_correction=bias_correction, **kwargs)

    def apply_single(self, gradient: mx.array, parameter: mx.array, state: dict) -> mx.array:
        if parameter.ndim < 2:
            return optim.Adam.apply_single(self, gradient, parameter, state)
        return super().apply_single(gradient, parameter, state)


def _opt(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass
class CLAPTaskConfig:
    """How the model is fine-tuned (field help doubles as the recipe's command-line help)."""

    learning_rate: float | None = _opt(
        None,
        "peak learning rate after warmup; if unset: 1e-5 (fine-tuning a checkpoint) or 3e-4 (the from-scratch demo)",
    )
    min_learning_rate: float = _opt(
        0.0, "learning rate at the end of the cosine decay (at most the learning rate in use)"
    )
    warmup_steps: int = _opt(0, "linear warmup, in optimizer steps")
    total_steps: int | None = _opt(
        None,
        "length of the cosine schedule in optimizer steps (if unset: the whole run; constant if unknown)",
    )
    weight_decay: float = _opt(0.0, "decoupled weight decay, on weight matrices only (LAION's rule)")
    freeze_audio: bool = _opt(False, "freeze the whole audio tower and its projection")
    freeze_text: bool = _opt(False, "freeze the whole text tower and its projection")
    freeze_audio_stages: int = _opt(
        0,
        "freeze the audio front end and this many Swin stages (0 to the model's count: 4 in LAION's HTSAT "
        "checkpoints, 2 in the demo model)",
    )
    freeze_text_layers: int = _opt(
        0,
        "freeze the text embeddings and this many RoBERTa layers (0 to the model's count: 12 in LAION's "
        "checkpoints, 2 in the demo model)",
    )
    train_logit_scale: bool = _opt(True, "learn logit_scale_a (clamped to [0, ln 100] after each step)")
    gradient_checkpointing: bool = _opt(
        False,
        "recompute each Swin block's and RoBERTa layer's activations in the backward pass instead of keeping "
        "them: less memory, more time a step; the same gradients",
    )
    batchnorm_eval: bool | None = _opt(
        None,
        "keep BatchNorm layers in eval mode while training (if unset: yes for a checkpoint, whose statistics a "
        "small batch would drag; no for a randomly initialised model, whose statistics must be learnt)",
    )

    def __post_init__(self):
        # Named by field; the recipe's parsing names them as flags (--task.learning_rate) through merge_config.
        check_setting("learning_rate", self.learning_rate, above=0, optional=True)
        check_setting("min_learning_rate", self.min_learning_rate, at_least=0)
        # Against the learning rate in use: when it is unset, its default depends on the run (fine-tuning or
        # the from-scratch demo), so the recipe checks it once it is known (`check_min_learning_rate`).
        if self.learning_rate is not None:
            self.check_min_learning_rate(self.learning_rate)
        check_setting("warmup_steps", self.warmup_steps, integer=True, at_least=0, at_most=MAX_STEPS)
        for name in ("freeze_audio_stages", "freeze_text_layers"):
            check_setting(name, getattr(self, name), integer=True, at_least=0)
        check_setting(
            "total_steps", self.total_steps, integer=True, at_least=1, at_most=MAX_STEPS, optional=True
        )
        check_setting("weight_decay", self.weight_decay, at_least=0)
        if self.freeze_audio and self.freeze_text and not self.train_logit_scale:
            raise ValueError("freeze_audio, freeze_text and train_logit_scale=False leave nothing to train")

    def check_given_warmup(self) -> None:
        """Refuse a ``warmup_steps`` above a given ``total_steps``, as min_learning_rate above the learning
        rate is: the warmup is part of the schedule, so neither setting would hold. Checked on the settings as
        given (`clap.cli.parse_arguments`), not here: a total_steps the run derives from its length cuts a
        longer warmup, with a warning (`resolve_training`)."""
        if self.total_steps is not None and self.warmup_steps > self.total_steps:
            raise SettingError(
                "warmup_steps",
                self.warmup_steps,
                f"at most total_steps ({self.total_steps}): the warmup is part of the schedule",
            )

    def check_min_learning_rate(self, learning_rate: float, why: str = "") -> None:
        """Raise unless ``min_learning_rate`` <= `learning_rate` (the peak the run uses; `why` says where it
        comes from when it is a default)."""
        if self.min_learning_rate > learning_rate:
            source = f" ({why})" if why else ""
            raise ValueError(
                f"min_learning_rate {self.min_learning_rate:g} is above the learning rate {learning_rate:g}{source}; "
                "the cosine decay ends at min_learning_rate, so it must be in [0, learning_rate]"
            )


def check_freezing_fits(cfg: CLAPTaskConfig, text_layers: int, audio_stages: int) -> None:
    """Refuse freezing more RoBERTa layers or Swin stages than the model has, naming the flag."""
    limits = (
        ("freeze_text_layers", text_layers, "RoBERTa layers"),
        ("freeze_audio_stages", audio_stages, "Swin stages"),
    )
    for name, count, what in limits:
        value = getattr(cfg, name)
        if value > count:
            raise ValueError(f"--task.{name} {value}: the model has {count} {what}; pass 0..{count}")


class CLAPTrainModule(TrainModule):
    """Fine-tunes a `ClapModel` on batches of matching audio and captions.

    A batch is a dict of ``mx.array``: ``input_features`` [B, C, frames, mel] float32 and ``is_longer`` [B, 1]
    bool from the CLAP front end, ``input_ids`` and ``attention_mask`` [B, L] int32 from the tokenizer.

    Parameters
    ----------
    model : ClapModel
    config : CLAPTaskConfig
    """

    def __init__(self, model: ClapModel, config: CLAPTaskConfig | None = None):
        super().__init__()
        self.config = config or CLAPTaskConfig()
        self.clap = model
        self.apply_freezing()
        # Only turned on, as transformers' Trainer does (args.gradient_checkpointing): a model the user set to
        # checkpoint (model.gradient_checkpointing_enable() before building the task) keeps it, where the
        # config's default False turned it off unsaid (the batch that fitted then ran out of memory).
        if self.config.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        # A checkpoint loads in eval mode (for inference) and fit keeps the modes it is given: a task is
        # built to train (with BatchNorm as batchnorm_eval says).
        self.train()

    # ---- freezing ---------------------------------------------------------------------------------
    def apply_freezing(self) -> None:
        """(Re)apply the config's freezing to the model; everything else is unfrozen first."""
        cfg, clap = self.config, self.clap
        clap.unfreeze()
        # BatchNorm running statistics are buffers, never trained.
        for _, module in clap.named_modules():
            if isinstance(module, nn.BatchNorm):
                module.freeze(recurse=False, keys=["running_mean", "running_var"], strict=False)
            # A quantized layer's (nn.quantize) packed weight has no gradient: the unfreeze above made it
            # trainable, and the fit refused it ("fc.weight (uint32) ... trainable"), naming an unfreeze()
            # the user never called. Its scales, biases and bias stay trainable, as any float weight.
            elif isinstance(getattr(module, "bits", None), int) and "scales" in module:
                module.freeze(recurse=False, keys=["weight"], strict=False)
        check_freezing_fits(
            cfg, len(clap.text_model.encoder.layer), len(clap.audio_model.audio_encoder.layers)
        )
        if cfg.freeze_audio:
            clap.audio_model.freeze()
            clap.audio_projection.freeze()
        elif cfg.freeze_audio_stages:
            clap.freeze_audio_layers(cfg.freeze_audio_stages)
        if cfg.freeze_text:
            clap.text_model.freeze()
            clap.text_projection.freeze()
        elif cfg.freeze_text_layers:
            clap.freeze_text_layers(cfg.freeze_text_layers)
        if not cfg.train_logit_scale:
            clap.freeze(recurse=False, keys=["logit_scale_a", "logit_scale_t"], strict=False)
        else:
            # LAION trains logit_scale_a only (logit_scale_t belongs to its MLP loss, unused here).
            clap.freeze(recurse=False, keys=["logit_scale_t"], strict=False)

    def parameter_counts(self) -> tuple[int, int]:
        """(total, trainable) number of parameters (BatchNorm statistics excluded)."""
        from mlx.utils import tree_flatten

        total = sum(v.size for k, v in tree_flatten(self.parameters()) if "running_" not in k)
        trainable = sum(v.size for _, v in tree_flatten(self.trainable_parameters()))
        return total, trainable

    def train(self, mode: bool = True) -> CLAPTrainModule:
        """Train/eval mode; with ``batchnorm_eval`` the BatchNorm layers stay in eval mode while training."""
        super().train(mode)
        if mode and self.config.batchnorm_eval is not False:  # None: the fine-tuning default
            for _, module in self.clap.named_modules():
                if isinstance(module, nn.BatchNorm):
                    module.eval()
        return self

    # ---- steps ------------------------------------------------------------------------------------
    def embed(self, batch: dict[str, mx.array]) -> tuple[mx.array, mx.array]:
        """Unit-norm (audio, text) embeddings of a batch."""
        audio = self.clap.get_audio_features(batch["input_features"], batch.get("is_longer"))
        text = self.clap.get_text_features(batch["input_ids"], batch["attention_mask"])
        return audio, text

    def compute_loss(self, batch: dict[str, mx.array]) -> tuple[mx.array, dict[str, mx.array]]:
        audio, text = self.embed(batch)
        # Data parallel: every rank scores all the ranks' pairs, as one process over the combined batch
        # would (every other clip is a negative), like LAION's gather_with_grad; gather_for_loss scales the
        # gradient of each rank's rows so that the Trainer's mean over ranks is the full loss's gradient.
        # `valid` (from the recipe's loader, where it padded the ranks' shards) leaves the padding out.
        valid = batch.get("valid")
        return clap_contrastive_loss(
            collectives.gather_for_loss(audio),
            collectives.gather_for_loss(text),
            mx.exp(self.clap.logit_scale_a),
            None if valid is None else collectives.all_gather(valid.astype(mx.float32)) > 0,
        )

    def batch_size(self, batch: Any) -> int:
        return int(batch["input_ids"].shape[0])

    # ---- token ids, checked on the host ----------------------------------------------------------------
    # Inside the compiled step the ids cannot be read, so an id beyond the vocabulary would only give NaN
    # embeddings there (see ClapTextEmbeddings); checked here, on the batch the loader made, it is an
    # IndexError naming the id. A min and a max of B x L ints: microseconds, and no wait on the device.
    def _check_token_ids(self, batch: dict[str, mx.array]) -> None:
        check_token_ids(batch["input_ids"], self.clap.config.text_config.vocab_size)

    def on_train_batch_start(self, batch: dict[str, mx.array], batch_idx: int) -> None:
        self._check_token_ids(batch)

    def on_validation_batch_start(self, batch: dict[str, mx.array], batch_idx: int) -> None:
        self._check_token_ids(batch)

    def on_test_batch_start(self, batch: dict[str, mx.array], batch_idx: int) -> None:
        self._check_token_ids(batch)

    # ---- optimizer and the post-step clamp ----------------------------------------------------------
    def configure_optimizers(self) -> OptimizerConfig:
        cfg = self.config
        peak = cfg.learning_rate or DEFAULT_FINE_TUNING_LR
        cfg.check_min_learning_rate(peak, "the default learning rate" if cfg.learning_rate is None else "")
        total = cfg.total_steps or self._steps_of_the_fit()
        if total:
            lr = WarmupCosineScheduler(
                peak_lr=peak,
                warmup_steps=min(cfg.warmup_steps, total),
                total_steps=total,
                min_lr=cfg.min_learning_rate,
            )
            name = "warmup_cosine"
        elif cfg.warmup_steps:
            lr = WarmupCosineScheduler(
                peak_lr=peak,
                warmup_steps=cfg.warmup_steps,
                total_steps=cfg.warmup_steps,
                min_lr=peak,
            )
            name = "warmup_constant"
        else:
            lr, name = peak, "constant"
        return OptimizerConfig(
            optimizer=AdamWMatricesOnly(
                learning_rate=lr,
                betas=[0.9, 0.999],
                eps=1e-8,
                weight_decay=cfg.weight_decay,
                bias_correction=True,  # as torch.optim.AdamW, which LAION trains with
            ),
            lr_schedule_name=name,
        )

    def _steps_of_the_fit(self) -> int | None:
        """The optimizer steps the Trainer's fit will take, None where unknown (no Trainer, or nothing bounds
        the fit): `estimated_stepping_batches`, as a Lightning schedule gets it, so that an epochs-only
        Trainer(max_epochs=N) decays over its N epochs too, not only a Trainer(max_steps=N)."""
        if self._trainer is None:
            return None
        steps = self.trainer.estimated_stepping_batches
        return int(steps) if steps != math.inf else None

    def clamp_logit_scales(self) -> None:
        """LAION's ``logit_scale.clamp_(0, ln 100)`` after an optimizer step (lazy; no host sync)."""
        clap = self.clap
        clap.logit_scale_a = mx.clip(clap.logit_scale_a, 0.0, LOGIT_SCALE_MAX)
        clap.logit_scale_t = mx.clip(clap.logit_scale_t, 0.0, LOGIT_SCALE_MAX)

    def on_after_optimizer_step(self) -> None:
        # Inside the compiled update step, right after the optimizer: the next step reads the clamped
        # value, as in LAION.
        self.clamp_logit_scales()
