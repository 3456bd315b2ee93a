"""The 1:1 mapping between Hugging Face CLAP state-dict names and this port's parameters.

Every MLX parameter path *is* the Hugging Face name (the modules use transformers' attribute names). Only two
things differ, listed in :data:`CONVERSION_TABLE`:

* convolution kernels: PyTorch stores ``(out, in, kh, kw)``, MLX ``(out, kh, kw, in)``;
* buffers that are not parameters here because their values follow from the config (relative-position
  indices, RoBERTa's ``position_ids`` / ``token_type_ids``, BatchNorm's ``num_batches_tracked``): checked on load,
  regenerated on export.

Legacy names (``LayerNorm.gamma`` / ``.beta`` in pre-2020 BERT-style checkpoints) are renamed on load.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from audiotrain.models.clap.htsat import relative_position_index
from audiotrain.models.clap.model import ClapModel

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten, tree_unflatten


@dataclass(frozen=True)
class Rule:
    """One row of the conversion table: HF names matching ``pattern`` get ``kind`` of treatment."""

    pattern: str
    kind: str  # "conv": transpose OIHW <-> OHWI; "buffer": derived from the config, not an MLX parameter
    why: str


CONVERSION_TABLE: tuple[Rule, ...] = (
    Rule(r"audio_model\.audio_encoder\.patch_embed\.proj\.weight", "conv", "4x4 patch embedding kernel"),
    Rule(r"audio_model\.audio_encoder\.patch_embed\.mel_conv2d\.weight", "conv", "fused: local-view kernel"),
    Rule(
        r"audio_model\.audio_encoder\.patch_embed\.fusion_model\.local_att\.[03]\.weight",
        "conv",
        "fused: AFF 1x1",
    ),
    Rule(
        r"audio_model\.audio_encoder\.patch_embed\.fusion_model\.global_att\.[14]\.weight",
        "conv",
        "fused: AFF 1x1",
    ),
    Rule(r".*\.attention\.self\.relative_position_index", "buffer", "Swin window index, from window_size"),
    Rule(r"text_model\.embeddings\.position_ids", "buffer", "arange(max_position_embeddings)"),
    Rule(r"text_model\.embeddings\.token_type_ids", "buffer", "zeros: every token has type 0"),
    Rule(r".*\.num_batches_tracked", "buffer", "BatchNorm step counter (unused with momentum 0.1)"),
)

_LEGACY_RENAMES = (
    (re.compile(r"LayerNorm\.gamma$"), "LayerNorm.weight"),
    (re.compile(r"LayerNorm\.beta$"), "LayerNorm.bias"),
)


class StateDictError(ValueError):
    """Checkpoint tensors that do not fit the model built from its config."""


def rule_for(name: str) -> Rule | None:
    """The conversion-table row for an HF state-dict name, or ``None`` for a plain 1:1 copy."""
    for rule in CONVERSION_TABLE:
        if re.fullmatch(rule.pattern, name):
            return rule
    return None


def _expected_buffer(model: ClapModel, name: str) -> np.ndarray | None:
    """The value a derived buffer must hold (``None``: any value of the right shape, e.g. a counter)."""
    cfg = model.config
    if name.endswith("relative_position_index"):
        return relative_position_index(cfg.audio_config.window_size)
    if name.endswith("position_ids"):
        return np.arange(cfg.text_config.max_position_embeddings, dtype=np.int64)[None]
    if name.endswith("token_type_ids"):
        return np.zeros((1, cfg.text_config.max_position_embeddings), dtype=np.int64)
    return None


def _buffer_names(model: ClapModel) -> list[str]:
    """The HF buffer names this model's transformers twin has (written on export)."""
    names = ["text_model.embeddings.position_ids", "text_model.embeddings.token_type_ids"]
    encoder = "audio_model.audio_encoder"
    for i, stage in enumerate(model.audio_model.audio_encoder.layers):
        for j in range(len(stage.blocks)):
            names.append(f"{encoder}.layers.{i}.blocks.{j}.attention.self.relative_position_index")
    names += [f"{path[: -len('.running_mean')]}.num_batches_tracked" for path in _batchnorm_paths(model)]
    return names


def _batchnorm_paths(model: ClapModel) -> list[str]:
    return [path for path, _ in tree_flatten(model.parameters()) if path.endswith(".running_mean")]


def hf_to_mlx(
    model: ClapModel, state: dict[str, mx.array], dtype: mx.Dtype = mx.float32, source: str = "checkpoint"
):
    """Convert an HF state dict into this model's parameter tree, checking every name and shape.

    Parameters
    ----------
    model : ClapModel
        Built from the checkpoint's config; provides the expected names and shapes.
    state : dict of str -> mx.array
        The checkpoint's tensors under their HF names.
    dtype : mx.Dtype
        Floating-point parameters are cast to this type.
    source : str
        The weights file, for error messages.

    Returns
    -------
    params : nested dict
        Ready for ``model.update(params)``.
    counters : dict of str -> int
        ``num_batches_tracked`` values, kept so export writes them back unchanged.

    Raises
    ------
    StateDictError
        Listing every missing, unexpected and mis-shaped tensor (and any derived buffer with a wrong value).
    """
    expected = dict(tree_flatten(model.parameters()))
    unexpected, misshaped, wrong_value, not_float = [], [], [], []
    params: dict[str, mx.array] = {}
    counters: dict[str, int] = {}
    buffer_names = set(_buffer_names(model))
    for raw_name, tensor in state.items():
        name = raw_name
        for pattern, replacement in _LEGACY_RENAMES:
            name = pattern.sub(replacement, name)
        rule = rule_for(name)
        if rule is not None and rule.kind == "buffer":
            want = _expected_buffer(model, name)
            if name.endswith("num_batches_tracked"):
                if name[: -len("num_batches_tracked")] + "running_mean" not in expected:
                    unexpected.append(raw_name)
                else:
                    counters[name] = (
                        int(np.asarray(tensor.astype(mx.int64)).reshape(-1)[0]) if tensor.size else 0
                    )
                continue
            if name not in buffer_names:
                unexpected.append(raw_name)
            elif tuple(tensor.shape) != want.shape:
                misshaped.append(f"{raw_name}: checkpoint {tuple(tensor.shape)}, model {want.shape}")
            elif not np.array_equal(np.asarray(tensor.astype(mx.int64)), want):
                wrong_value.append(raw_name)
            continue
        if name not in expected:
            unexpected.append(raw_name)
            continue
        if rule is not None and rule.kind == "conv":
            if tensor.ndim != 4:
                misshaped.append(f"{raw_name}: checkpoint {tuple(tensor.shape)}, expected a 4-D conv kernel")
                continue
            tensor = tensor.transpose(0, 2, 3, 1)
        want_shape = tuple(expected[name].shape)
        if tuple(tensor.shape) != want_shape:
            misshaped.append(f"{raw_name}: checkpoint {tuple(tensor.shape)}, model {want_shape}")
            continue
        if not mx.issubdtype(tensor.dtype, mx.floating):
            # (a float's bytes read as whole numbers, cast to float, scored without a word)
            not_float.append(
                f"{raw_name}: checkpoint {str(tensor.dtype).removeprefix('mlx.core.')}, model float"
            )
            continue
        params[name] = tensor.astype(dtype)
    refused = misshaped + not_float
    missing = sorted(set(expected) - set(params) - {n for n in expected if _was_misshaped(n, refused)})
    problems = []
    for title, names in (
        ("missing", missing),
        ("unexpected", sorted(unexpected)),
        ("mis-shaped", misshaped),
        ("with values that do not follow from config.json", sorted(wrong_value)),
        ("integer or bool", not_float),
    ):
        if names:
            shown = "\n  ".join(names[:50]) + (
                f"\n  ... and {len(names) - 50} more" if len(names) > 50 else ""
            )
            problems.append(f"{len(names)} {title} tensor(s):\n  {shown}")
    if problems:
        raise StateDictError(
            f"{source} does not match the model built from config.json:\n" + "\n".join(problems)
        )
    return tree_unflatten(list(params.items())), counters


def _was_misshaped(name: str, misshaped: list[str]) -> bool:
    return any(entry.split(":", 1)[0] == name for entry in misshaped)


def mlx_to_hf(
    model: ClapModel, counters: dict[str, int] | None = None, dtype=np.float32
) -> dict[str, np.ndarray]:
    """The HF state dict of ``model``: every parameter under its HF name plus the derived buffers.

    Parameters
    ----------
    model : ClapModel
    counters : dict, optional
        ``num_batches_tracked`` values to write back (0 where absent).
    dtype : numpy dtype
        Floating-point tensors are written in this type.
    """
    counters = counters or {}
    out: dict[str, np.ndarray] = {}
    for name, value in tree_flatten(model.parameters()):
        array = np.asarray(value.astype(mx.float32)).astype(dtype)
        rule = rule_for(name)
        if rule is not None and rule.kind == "conv":
            array = array.transpose(0, 3, 1, 2)
        out[name] = np.array(array, order="C")  # (ascontiguousarray would turn the 0-d logit scales 1-d)
    for name in _buffer_names(model):
        want = _expected_buffer(model, name)
        out[name] = want.copy() if want is not None else np.array(counters.get(name, 0), dtype=np.int64)
    return out
