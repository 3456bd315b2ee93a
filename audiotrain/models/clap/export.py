"""Save a (fine-tuned) :class:`ClapModel` as a Hugging Face folder that ``transformers`` loads unchanged."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from audiotrain._files import TMP_PREFIX, write_json_atomically, write_path_atomically
from audiotrain._text import listed
from audiotrain.features.clap import FRONT_END_FILES, PROCESSOR_FILE, front_end_json
from audiotrain.models.clap.config import ClapConfig
from audiotrain.models.clap.convert import StateDictError, mlx_to_hf
from audiotrain.models.clap.loading import WEIGHT_FILES
from audiotrain.models.clap.model import ClapModel
from audiotrain.models.clap.tokenizer import TOKENIZER_FILES, ClapTokenizer

import numpy as np
from mlx.utils import tree_flatten


def save_pretrained(
    model: ClapModel,
    config: ClapConfig | None,
    out_dir: str | Path,
    extractor_dir: str | Path | None = None,
    tokenizer: ClapTokenizer | str | Path | None = None,
    dtype=np.float32,
    overwrite: bool = False,
) -> Path:
    """Write ``config.json``, ``model.safetensors`` and the preprocessor and tokenizer files into ``out_dir``.

    The result loads with ``transformers.ClapModel.from_pretrained(out_dir)`` (and ``ClapProcessor``) and gives
    the same outputs as ``model``; :func:`load_pretrained` reads it back bitwise.

    Parameters
    ----------
    model : ClapModel
    config : ClapConfig, optional
        Defaults to ``model.config``; its ``raw`` keys from the original ``config.json`` are kept, except that
        ``dtype`` / ``torch_dtype`` entries are set to the type the weights are saved in.
    out_dir : str or Path
        Created if needed. Files are written to a temporary name and renamed, so an interrupted export never
        leaves a half-written ``model.safetensors`` under the final name. A folder that already holds a
        model's files (weights, ``config.json``, tokenizer or preprocessor files: an earlier save, the
        checkpoint the model was loaded from) is a `FileExistsError` naming them, unless `overwrite`.
    extractor_dir : str or Path, optional
        Folder holding the front end's ``processor_config.json`` and / or ``preprocessor_config.json`` to
        copy; defaults to ``config.source`` (the checkpoint folder). Their keys are kept as they are, except
        that whole numbers written as floats (``"max_length_s": 2.0``, by an older audiotrain) are written as
        ints, as transformers needs them.
    tokenizer : ClapTokenizer or folder, optional
        Tokenizer to save; defaults to copying the tokenizer files of ``config.source``.
    dtype : numpy dtype, its name, or an MLX dtype
        Floating-point type of the saved tensors (also written to ``config.json`` as ``dtype``): float32,
        float16 or float64. bfloat16 is refused before anything is written (the weights go through numpy,
        which has none): save float32, and load with ``from_pretrained(..., dtype=torch.bfloat16)``.
    overwrite : bool
        Write into `out_dir` even where it holds a model's files: those of the same names are replaced, and
        a model.safetensors written beside a pytorch_model.bin is the one `load_pretrained` then reads.

    Returns
    -------
    Path
        ``out_dir``.
    """
    from safetensors.numpy import save_file

    dtype = _weights_dtype(dtype)  # (before anything is created)
    _refuse_audio_tower_alone(model)
    config = config or model.config
    _refuse_weights_transformers_lacks(model, config)
    out = Path(out_dir)
    _refuse_to_replace(out, config, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    # An export killed outright (SIGKILL) left its temporary file, which the Hub upload of the folder would
    # carry. Two exports into one folder at once would mix their files anyway: any left is a dead one's.
    for leftover in out.glob(f"{TMP_PREFIX}*"):
        if re.fullmatch(r"[0-9a-f]{32}\.(safetensors|json)", leftover.name.removeprefix(TMP_PREFIX)):
            leftover.unlink(missing_ok=True)
    state = mlx_to_hf(model, config.num_batches_tracked, dtype=dtype)
    write_path_atomically(
        out / "model.safetensors", lambda tmp: save_file(state, str(tmp), metadata={"format": "pt"})
    )
    config_dict = _with_dtype(config.to_dict(), np.dtype(dtype).name)
    write_path_atomically(
        out / "config.json",
        lambda tmp: tmp.write_text(json.dumps(config_dict, indent=2, sort_keys=True) + "\n"),
    )

    extractor_dir = Path(extractor_dir) if extractor_dir is not None else config.source
    if extractor_dir is not None:
        _copy_front_end(Path(extractor_dir), out)
    if isinstance(tokenizer, ClapTokenizer):
        tokenizer.save_pretrained(out)
    else:
        source = Path(tokenizer) if tokenizer is not None else config.source
        if source is not None:
            _copy_present(source, out, TOKENIZER_FILES)
    return out


def _refuse_audio_tower_alone(model) -> None:
    """Refuse the audio tower alone (a classifier's fine-tuned backbone): transformers' folder is a whole
    ClapModel, and the tower's paths lack `audio_model.`, which was reported as 118 unexpected and 167
    missing weights with advice about LoRA adapters."""
    from audiotrain.models.clap.htsat import ClapAudioEncoder, ClapAudioModel

    if isinstance(model, (ClapAudioModel, ClapAudioEncoder)):
        raise TypeError(
            f"save_pretrained: got the audio tower alone ({type(model).__name__}); it writes a whole "
            "ClapModel, as transformers' folders hold one. Pass the ClapModel the tower came from "
            "(load_pretrained's model: its audio_model is the tower you fine-tuned, the same object), or put "
            "the tuned weights into one: clap, config = load_pretrained(folder); "
            "clap.audio_model.update(tower.parameters())"
        )


def _weights_dtype(dtype) -> np.dtype:
    """`dtype` as the numpy type the weights are saved in; anything else is refused naming what works (numpy's
    own TypeError for bfloat16 came after `out_dir` was created, and left it empty)."""
    import mlx.core as mx

    if isinstance(dtype, mx.Dtype):
        dtype = str(dtype).removeprefix("mlx.core.")  # (an MLX dtype prints as mlx.core.float16)
    if str(dtype) == "bfloat16":
        raise ValueError(
            "save_pretrained: dtype bfloat16 is not offered: the weights are written through numpy, which has no "
            "bfloat16. Save float32 (or float16) and load with transformers' "
            "ClapModel.from_pretrained(folder, dtype=torch.bfloat16)"
        )
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved.name not in ("float16", "float32", "float64"):
        raise ValueError(f"save_pretrained: dtype {dtype!r}: expected float32, float16 or float64")
    return resolved


def _refuse_weights_transformers_lacks(model: ClapModel, config: ClapConfig) -> None:
    """Refuse, before anything is written, a model whose weights transformers' `ClapModel` cannot take: a
    quantized layer's (nn.quantize) packed words were written as float weights beside `scales` and
    `biases`, and a LoRA wrapper's `query.base.weight` and `query.lora_a` beside the `query.weight` it
    lacks; transformers then failed on the shapes, or initialised the missing weights at random."""
    from audiotrain.train.callers_random import _mlx_key, _restore_mlx_key

    quantized = [
        path
        for path, module in model.named_modules()
        if isinstance(getattr(module, "bits", None), int) and "scales" in module
    ]
    if quantized:
        raise StateDictError(
            f"save_pretrained: layers {listed(sorted(quantized))} are quantized (nn.quantize): "
            "transformers' ClapModel holds float weights. Dequantize each before saving: an nn.Linear "
            "whose weight is mx.dequantize(layer.weight, layer.scales, layer.biases, layer.group_size, "
            "layer.bits) (with any LoRA adapters merged into it) and whose bias is layer.bias"
        )
    key = _mlx_key()
    try:
        reference = ClapModel(config)  # (lazy: its random weights are never computed)
    finally:
        _restore_mlx_key(key)  # (building it drew from the caller's MLX key)
    expected = {name: tuple(value.shape) for name, value in tree_flatten(reference.parameters())}
    own = {name: tuple(value.shape) for name, value in tree_flatten(model.parameters())}
    unexpected = sorted(set(own) - set(expected))
    missing = sorted(set(expected) - set(own))
    misshaped = sorted(
        f"{name} {own[name]} (config: {expected[name]})"
        for name in set(own) & set(expected)
        if own[name] != expected[name]
    )
    if unexpected or missing or misshaped:
        parts = [
            f"{what} {listed(names)}"
            for what, names in (("unexpected", unexpected), ("missing", missing), ("mis-shaped", misshaped))
            if names
        ]
        raise StateDictError(
            f"save_pretrained: the model's weights are not those of transformers' ClapModel for this config "
            f"({'; '.join(parts)}). LoRA adapters or other layers added to the model must be merged into "
            "the layers they wrap (a plain nn.Linear with the merged weight) before saving"
        )


def _refuse_to_replace(out: Path, config: ClapConfig, overwrite: bool) -> None:
    """Refuse, before any work, an `out` that is a file, or (without `overwrite`) one holding a model's files:
    a fine-tuned model saved by slip over its pretrained checkpoint replaced it without a word."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"save_pretrained: {out} is a file; expected a folder for the model")
    if overwrite or not out.is_dir():
        return
    names = ("config.json", *WEIGHT_FILES, *FRONT_END_FILES, *TOKENIZER_FILES)
    taken = [name for name in names if (out / name).exists() or (out / name).is_symlink()]
    if not taken:
        return
    source = config.source
    loaded_from = source is not None and Path(source).is_dir() and out.resolve() == Path(source).resolve()
    what = "the checkpoint this model was loaded from" if loaded_from else "a model's files"
    raise FileExistsError(
        f"save_pretrained: {out} already holds {what} ({listed(taken)}); choose a new folder, or pass "
        "overwrite=True to replace them"
    )


def _with_dtype(config_dict: dict, dtype_name: str) -> dict:
    """``config_dict`` declaring the type the weights are saved in.

    transformers 5 loads a model in the type its ``config.json`` names (``dtype``; ``torch_dtype`` before), so a
    type kept from the source checkpoint (a float16 download fine-tuned and saved in float32) would be wrong.
    """
    config_dict["dtype"] = dtype_name
    for section in (config_dict, config_dict.get("text_config"), config_dict.get("audio_config")):
        if isinstance(section, dict):
            for key in ("dtype", "torch_dtype"):
                if section.get(key) is not None:
                    section[key] = dtype_name
    return config_dict


def _copy_front_end(src: Path, dst: Path) -> None:
    """Copy the front-end files of `src` into `dst`, their whole-number settings as ints (`front_end_json`):
    an older audiotrain wrote ``"max_length_s": 2.0``, on which transformers' ClapFeatureExtractor fails for
    every clip of another length, and an export or a new run from its folder copied it on. A file holding
    nothing to change (or no JSON object) is copied byte for byte."""
    _copy_present(src, dst, FRONT_END_FILES)
    for name in FRONT_END_FILES:
        if not (src / name).is_file() or (src / name).resolve() == (dst / name).resolve():
            continue
        try:
            config = json.loads((src / name).read_text(encoding="utf-8"))
        except (ValueError, RecursionError):
            continue  # (refused where it is read; copied as it is)
        if not isinstance(config, dict):
            continue
        fixed = front_end_json(config, nested=name == PROCESSOR_FILE)
        if json.dumps(fixed) != json.dumps(config):
            write_json_atomically(dst / name, fixed, indent=2)


def _copy_present(src: Path, dst: Path, names) -> None:
    if not src.is_dir():
        raise FileNotFoundError(
            f"{src}: not a folder (expected the checkpoint folder with the files to copy)"
        )
    for name in names:
        if (src / name).is_file() and (src / name).resolve() != (dst / name).resolve():
            shutil.copyfile(src / name, dst / name)
