"""CLAP configuration read from (and written back to) a Hugging Face ``config.json``.

The field names and defaults follow ``transformers.ClapConfig`` (``laion/clap-htsat-fused`` defaults), so a
checkpoint's ``config.json`` maps onto these dataclasses field by field. Keys that only matter to
``transformers`` (``architectures``, ``id2label``, ``torch_dtype``, ...) are kept untouched in ``raw`` so that an
exported folder writes them back unchanged.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audiotrain._files import dangling_link, read_json_file


class ClapConfigError(ValueError):
    """A ``config.json`` that does not describe a CLAP model this port can build."""


@dataclass
class ClapTextConfig:
    """The RoBERTa text tower (``text_config`` in ``config.json``)."""

    vocab_size: int = 50265
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 514
    type_vocab_size: int = 1
    layer_norm_eps: float = 1e-12
    projection_dim: int = 512
    pad_token_id: int = 1
    bos_token_id: int = 0
    eos_token_id: int = 2
    projection_hidden_act: str = "relu"


@dataclass
class ClapAudioConfig:
    """The HTSAT (Swin) audio tower (``audio_config`` in ``config.json``)."""

    window_size: int = 8
    num_mel_bins: int = 64
    spec_size: int = 256
    hidden_act: str = "gelu"
    patch_size: int = 4
    patch_stride: tuple[int, int] = (4, 4)
    num_classes: int = 527
    hidden_size: int = 768
    projection_dim: int = 512
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_attention_heads: tuple[int, ...] = (4, 8, 16, 32)
    enable_fusion: bool = False
    hidden_dropout_prob: float = 0.1
    fusion_type: str | None = None
    patch_embed_input_channels: int = 1
    flatten_patch_embeds: bool = True
    patch_embeds_hidden_size: int = 96
    enable_patch_layer_norm: bool = True
    drop_path_rate: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    qkv_bias: bool = True
    mlp_ratio: float = 4.0
    aff_block_r: int = 4
    projection_hidden_act: str = "relu"
    layer_norm_eps: float = 1e-5

    @property
    def freq_ratio(self) -> int:
        """How many mel-bin blocks are stacked to fold the spectrogram into a square image."""
        return self.spec_size // self.num_mel_bins

    @property
    def num_features(self) -> int:
        """Channels after the last Swin stage (the width the pooled audio vector has)."""
        return int(self.patch_embeds_hidden_size * 2 ** (len(self.depths) - 1))

    @property
    def spec_width(self) -> int:
        """Frames the time axis is resized to before folding (1024 for the LAION checkpoints)."""
        return self.spec_size * self.freq_ratio


@dataclass
class ClapConfig:
    """A whole CLAP model: both towers, the shared projection size and the initial logit scale."""

    text_config: ClapTextConfig = field(default_factory=ClapTextConfig)
    audio_config: ClapAudioConfig = field(default_factory=ClapAudioConfig)
    logit_scale_init_value: float = 1 / 0.07
    projection_dim: int = 512
    projection_hidden_act: str = "relu"
    # Everything else the file held, written back on export so transformers sees what it wrote.
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # The checkpoint folder it was read from (tokenizer and preprocessor files live there), if any.
    source: Path | None = field(default=None, repr=False, compare=False)
    # BatchNorm ``num_batches_tracked`` counters of the checkpoint: unused by the model, written back on export.
    num_batches_tracked: dict[str, int] = field(default_factory=dict, repr=False, compare=False)
    # The fields ("text_config.vocab_size") the file left out, which took their defaults: named in errors.
    defaulted: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        # As in transformers' ClapConfig: the top-level projection settings win over the towers' own.
        for sub in (self.text_config, self.audio_config):
            sub.projection_dim = self.projection_dim
            sub.projection_hidden_act = self.projection_hidden_act
        validate(self)

    # ------------------------------------------------------------------ reading / writing
    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config.json") -> ClapConfig:
        """Build a config from the parsed contents of a Hugging Face ``config.json``.

        Parameters
        ----------
        data : dict
            The parsed JSON object.
        source : str
            Where it came from, for error messages.
        """
        if not isinstance(data, dict):
            raise ClapConfigError(f"{source}: expected a JSON object, got {type(data).__name__}")
        model_type = data.get("model_type", "clap")
        if model_type != "clap":
            raise ClapConfigError(
                f"{source}: model_type is {model_type!r}, expected 'clap' (a ClapModel checkpoint)"
            )
        # Only a missing block means the defaults: a null (or [], "") one would build the default towers,
        # which then fail on every tensor of the weights, naming no setting.
        text_data = data.get("text_config", {})
        position_type = (
            text_data.get("position_embedding_type", "absolute") if isinstance(text_data, dict) else None
        )
        if position_type not in (None, "absolute"):
            raise ClapConfigError(
                f"{source}: text_config.position_embedding_type is {position_type!r}; only 'absolute' is supported"
            )
        text = _sub_config(ClapTextConfig, text_data, f"{source}: text_config")
        audio = _sub_config(ClapAudioConfig, data.get("audio_config", {}), f"{source}: audio_config")
        top = {}
        for name in ("logit_scale_init_value", "projection_dim", "projection_hidden_act"):
            if name in data:
                top[name] = check_json_field(ClapConfig, name, data[name], f"{source}: {name}")
                _check_positive(name, top[name], f"{source}: {name}")
        defaulted = _left_out(data)
        try:
            config = cls(text_config=text, audio_config=audio, raw=copy.deepcopy(data), **top)
        except ClapConfigError as error:
            # (a value the message names may be a default the file does not hold: "window_size 8")
            note = defaults_note([name for name in defaulted if _named_in(name, str(error))], source)
            raise ClapConfigError(f"{source}: {error}" + (f"; {note}" if note else "")) from None
        config.defaulted = defaulted
        return config

    @classmethod
    def from_json(cls, path: str | Path) -> ClapConfig:
        """Read a ``config.json`` file."""
        path = Path(path)
        if not path.exists():
            what = dangling_link(path) or "no such file"
            raise ClapConfigError(f"{path}: {what} (a CLAP checkpoint folder needs config.json)")
        if path.is_dir():
            raise ClapConfigError(f"{path}: is a folder; expected the model's config.json file")
        data = read_json_file(path, ClapConfigError)
        return cls.from_dict(data, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        """The ``config.json`` contents for ``transformers.ClapModel.from_pretrained``.

        Keys the original file held are kept; the model-defining fields are overwritten with this config's values.
        """
        out = copy.deepcopy(self.raw)
        out.setdefault("architectures", ["ClapModel"])
        out["model_type"] = "clap"
        for name in ("logit_scale_init_value", "projection_dim", "projection_hidden_act"):
            out[name] = getattr(self, name)
        for key, sub, model_type in (
            ("text_config", self.text_config, "clap_text_model"),
            ("audio_config", self.audio_config, "clap_audio_model"),
        ):
            section = dict(out.get(key) or {})
            for f in dataclasses.fields(sub):
                value = getattr(sub, f.name)
                section[f.name] = list(value) if isinstance(value, tuple) else value
            section.setdefault("model_type", model_type)
            out[key] = section
        return out

    def save(self, path: str | Path) -> None:
        """Write ``to_dict()`` as JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")


#: The fields that size or add tensors: one left out takes a default that may not fit the weights.
_SHAPE_FIELDS = {
    "vocab_size", "hidden_size", "num_hidden_layers", "intermediate_size", "max_position_embeddings",
    "type_vocab_size", "projection_dim", "window_size", "num_mel_bins", "patch_size", "patch_stride",
    "patch_embeds_hidden_size", "depths", "num_attention_heads", "enable_fusion", "mlp_ratio", "qkv_bias",
    "enable_patch_layer_norm", "aff_block_r", "num_classes",
}  # fmt: skip
_TOP_FIELDS = ("logit_scale_init_value", "projection_dim", "projection_hidden_act")
_BLOCKS = ("text_config", "audio_config")


def _left_out(data: dict[str, Any]) -> tuple[str, ...]:
    """The fields ("audio_config.depths") a config.json's object leaves out ("audio_config": the block)."""
    left = [name for name in _TOP_FIELDS if name not in data]
    for key, owner in (("text_config", ClapTextConfig), ("audio_config", ClapAudioConfig)):
        if key not in data:
            left.append(key)
            continue
        section = data[key] if isinstance(data[key], dict) else {}
        # (a tower's projection settings are the top level's, whatever it holds)
        names = [f.name for f in dataclasses.fields(owner) if not f.name.startswith("projection_")]
        left += [f"{key}.{name}" for name in names if name not in section]
    return tuple(left)


def _named_in(field_name: str, message: str) -> bool:
    """Whether `message` names `field_name` ("audio_config.depths": the block, then the field)."""
    pattern = r"\b.*\b".join(re.escape(part) for part in field_name.split("."))
    return re.search(rf"\b{pattern}\b", message) is not None


def _default_of(name: str) -> Any:
    owner = {"text_config": ClapTextConfig(), "audio_config": ClapAudioConfig()}.get(name.split(".")[0])
    value = getattr(owner, name.split(".")[-1]) if owner is not None else getattr(ClapConfig, name)
    return list(value) if isinstance(value, tuple) else value


def defaults_note(fields, source: str | Path) -> str:
    """'SOURCE does not set F (default V), ...: ...' for `fields` a config.json left out, '' for none."""
    if not fields:
        return ""
    shown = ", ".join(
        f"{name} (the whole block: each field its default)"
        if name in _BLOCKS
        else f"{name} (default {_default_of(name)!r})"
        for name in fields
    )
    return (
        f"{source} does not set {shown}: transformers' ClapConfig defaults were taken, as transformers takes "
        "them; set the checkpoint's own values there"
    )


def shape_defaults_note(config: ClapConfig) -> str:
    """`defaults_note` of the left-out fields that size tensors, for a checkpoint whose weights do not fit."""
    fields = [name for name in config.defaulted if name in _BLOCKS or name.split(".")[-1] in _SHAPE_FIELDS]
    source = config.source / "config.json" if config.source is not None else "config.json"
    return defaults_note(fields, source)


def check_json_field(owner: type, name: str, value: Any, where: str) -> Any:
    """Check one JSON value against the dataclass field's annotated type; lists become tuples. Raises
    `ClapConfigError` naming `where` and what was expected (also used for ``preprocessor_config.json``)."""
    annotation = {f.name: f.type for f in dataclasses.fields(owner)}[name]
    annotation = str(annotation)
    if annotation.endswith(" | None") and annotation != "str | None":
        if value is None:
            return None
        annotation = annotation.removesuffix(" | None")
    if annotation.startswith("tuple"):
        # tuple[int, int] holds exactly that many (patch_stride: [4] was an IndexError in `validate`),
        # tuple[int, ...] at least one.
        items = annotation.removeprefix("tuple[").removesuffix("]").split(", ")
        length = None if items[-1] == "..." else len(items)
        if _is_int(value):
            value = (value,) * (length or 2)
        expected = f"a list of {length} integers" if length else "a non-empty list of integers"
        if (
            not isinstance(value, (list, tuple))
            or not all(_is_int(v) for v in value)
            or len(value) != (length or len(value))
            or not value
        ):
            raise ClapConfigError(f"{where}: expected {expected}, got {value!r}")
        return tuple(value)
    if annotation == "bool":
        if not isinstance(value, bool):
            raise ClapConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if annotation == "int":
        if isinstance(value, (list, tuple)) and value and all(v == value[0] and _is_int(v) for v in value):
            value = value[0]  # patch_size written as [4, 4]
        if not _is_int(value):
            raise ClapConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation == "float":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ClapConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation == "str":
        if not isinstance(value, str):
            raise ClapConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if annotation == "str | None":
        if value is not None and not isinstance(value, str):
            raise ClapConfigError(f"{where}: expected a string or null, got {value!r}")
        return value
    # A field type this reader does not know: a bug in this module, not a user error.
    raise AssertionError(f"unhandled annotation {annotation} for {name}")


def _is_int(value: Any) -> bool:
    """Whether a JSON value is an integer (true and false are not, though Python's bool is an int)."""
    return isinstance(value, int) and not isinstance(value, bool)


#: Sizes that must be at least 1 (a zero or negative one fails deep inside MLX, naming nothing).
_POSITIVE = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "type_vocab_size",
    "projection_dim",
    "window_size",
    "num_mel_bins",
    "spec_size",
    "patch_size",
    "patch_stride",
    "patch_embeds_hidden_size",
    "depths",
    "aff_block_r",
)


#: Upper bounds of the sizes, far above any CLAP checkpoint (LAION's: 12 layers of 768, 514 positions, HTSAT
#: depths [2, 2, 6, 2], spec_size 256): an absurd value is refused here, before building the model allocates
#: gigabytes (num_hidden_layers 100000), overflows MLX's 32-bit sizes (vocab_size 10**12), or resizes the
#: spectrogram to terabytes (spec_size 2**24).
_SIZE_LIMITS = {
    "vocab_size": 2**20,
    "hidden_size": 2**15,
    "num_hidden_layers": 128,
    "num_attention_heads": 1024,
    "intermediate_size": 2**17,
    "max_position_embeddings": 2**16,
    "type_vocab_size": 1024,
    "projection_dim": 2**15,
    "window_size": 256,
    "num_mel_bins": 1024,
    "spec_size": 1024,
    "patch_size": 256,
    "patch_stride": 256,
    "num_classes": 2**16,
    "patch_embeds_hidden_size": 2**13,
    "depths": 64,
    "aff_block_r": 64,
}
#: Allowed ranges of the numbers (low, high, whether high itself is allowed): dropout is a probability, a
#: layer-norm epsilon a small positive number; outside them MLX fails naming neither file nor field.
_NUMBER_RANGES = {
    "hidden_dropout_prob": (0.0, 1.0, False),
    "attention_probs_dropout_prob": (0.0, 1.0, False),
    "drop_path_rate": (0.0, 1.0, False),
    "layer_norm_eps": (1e-30, 1.0, True),
    "mlp_ratio": (1e-3, 64.0, True),
    "logit_scale_init_value": (-1e3, 1e3, True),
}
#: Most HTSAT stages (`depths`); each doubles the width, so `num_features` grows as 2**stages.
_MAX_STAGES = 8


def _check_positive(name: str, value: Any, where: str) -> None:
    """Refuse a size below 1 or above its `_SIZE_LIMITS`, or a number outside its `_NUMBER_RANGES`."""
    values = value if isinstance(value, tuple) else (value,)
    shown = list(value) if isinstance(value, tuple) else value
    sizes = "sizes" if isinstance(value, tuple) else "a size"
    if name in _POSITIVE and any(v < 1 for v in values):
        raise ClapConfigError(f"{where}: expected {sizes} of at least 1, got {shown}")
    if name in _SIZE_LIMITS and any(v > _SIZE_LIMITS[name] for v in values):
        raise ClapConfigError(f"{where}: expected {sizes} of at most {_SIZE_LIMITS[name]}, got {shown}")
    if isinstance(value, tuple) and len(value) > _MAX_STAGES and name in ("depths", "num_attention_heads"):
        raise ClapConfigError(f"{where}: expected at most {_MAX_STAGES} stages, got {len(value)}")
    if name in _NUMBER_RANGES:
        low, high, high_allowed = _NUMBER_RANGES[name]
        if not (low <= value < high or (high_allowed and value == high)):
            raise ClapConfigError(
                f"{where}: expected a number from {low:g} to {high:g}{'' if high_allowed else ' (excluded)'}, "
                f"got {value}"
            )


def _sub_config(cls: type, data: dict[str, Any], where: str):
    if not isinstance(data, dict):
        got = json.dumps(data, ensure_ascii=False, default=str)
        got = got if len(got) <= 40 else got[:37] + "..."
        raise ClapConfigError(f"{where}: expected an object of settings, got {got}")
    known = {f.name for f in dataclasses.fields(cls)}
    values = {}
    for name, value in data.items():
        if name not in known:
            continue  # generic transformers keys (id2label, torch_dtype, ...): kept in ClapConfig.raw
        if name == "eos_token_id" and isinstance(value, list) and value:
            value = value[0]  # (generation configs list several; the first is the text's end)
        if name in ("pad_token_id", "bos_token_id", "eos_token_id") and value is None:
            continue
        values[name] = check_json_field(cls, name, value, f"{where}.{name}")
        _check_positive(name, values[name], f"{where}.{name}")
    return cls(**values)


_ACTIVATIONS = ("gelu", "relu", "gelu_new", "gelu_pytorch_tanh", "tanh", "silu", "swish")


def validate(config: ClapConfig) -> None:
    """Raise :class:`ClapConfigError` naming the field when the HTSAT geometry or a setting is unsupported."""
    a, t = config.audio_config, config.text_config
    for where, act in (
        ("audio_config.hidden_act", a.hidden_act),
        ("text_config.hidden_act", t.hidden_act),
        ("projection_hidden_act", config.projection_hidden_act),
    ):
        if act not in _ACTIVATIONS:
            raise ClapConfigError(
                f"{where}: activation {act!r} is not supported (one of {', '.join(_ACTIVATIONS)})"
            )
    if len(a.depths) != len(a.num_attention_heads):
        raise ClapConfigError(
            f"audio_config: depths {list(a.depths)} and num_attention_heads {list(a.num_attention_heads)} "
            "must have the same length"
        )
    if a.spec_size % a.num_mel_bins or a.freq_ratio < 1:
        raise ClapConfigError(
            f"audio_config: spec_size {a.spec_size} must be a positive multiple of num_mel_bins {a.num_mel_bins}"
        )
    if a.patch_size != a.patch_stride[0] or a.patch_size != a.patch_stride[1]:
        raise ClapConfigError(
            f"audio_config: patch_size {a.patch_size} != patch_stride {list(a.patch_stride)} is not supported"
        )
    if a.patch_embed_input_channels != 1:
        raise ClapConfigError(
            "audio_config.patch_embed_input_channels: only 1 (a mono mel spectrogram) is supported"
        )
    if a.enable_fusion and a.fusion_type not in (None, "aff_2d"):
        raise ClapConfigError(f"audio_config.fusion_type: {a.fusion_type!r} is not supported (only 'aff_2d')")
    if not a.flatten_patch_embeds:
        raise ClapConfigError("audio_config.flatten_patch_embeds: only true is supported")
    if a.hidden_size != a.num_features:
        raise ClapConfigError(
            f"audio_config.hidden_size is {a.hidden_size} but the last Swin stage has "
            f"patch_embeds_hidden_size * 2**(len(depths)-1) = {a.num_features} channels"
        )
    grid = a.spec_size // a.patch_size
    for i, (depth, heads) in enumerate(zip(a.depths, a.num_attention_heads)):
        resolution = grid // 2**i
        dim = a.patch_embeds_hidden_size * 2**i
        if resolution < a.window_size or resolution % min(a.window_size, resolution):
            raise ClapConfigError(
                f"audio_config: stage {i} works on a {resolution}x{resolution} grid, which must be a multiple of "
                f"window_size {a.window_size} (spec_size / patch_size / 2**stage)"
            )
        if dim % heads:
            raise ClapConfigError(f"audio_config: stage {i} width {dim} is not divisible by {heads} heads")
        if depth < 1:
            raise ClapConfigError(f"audio_config.depths[{i}] must be at least 1")
    if t.hidden_size % t.num_attention_heads:
        raise ClapConfigError(
            f"text_config: hidden_size {t.hidden_size} is not divisible by num_attention_heads {t.num_attention_heads}"
        )
    if t.max_position_embeddings < t.pad_token_id + 2:
        raise ClapConfigError("text_config.max_position_embeddings is too small for RoBERTa position ids")
