"""Build a seeded random-weight ``transformers.ClapModel`` and its reference outputs: the CLAP parity fixture.

Usage (needs torch and transformers; nothing is downloaded)::

    python scripts/make_clap_fixture.py --out tests/fixtures/clap_tiny --size tiny --formats bin
    python scripts/make_clap_fixture.py --out tests/fixtures/clap_tiny_fused --size tiny --fused --seed 3 \
        --formats safetensors
    python scripts/make_clap_fixture.py --out /tmp/clap_full --size full --clips 2      # laion/clap-htsat-unfused shape

The folder it writes is laid out like a Hugging Face checkpoint:

* ``config.json``, ``model.safetensors`` and/or ``pytorch_model.bin`` (a genuine ``torch.save`` zip pickle),
* ``tokenizer.json`` / ``vocab.json`` / ``merges.txt`` / ``tokenizer_config.json``: a tiny RoBERTa-style byte-level
  BPE trained here on a few captions (the real checkpoints use RoBERTa's 50265-token vocabulary),
* ``preprocessor_config.json`` (transformers' ``ClapFeatureExtractor`` settings for the mel size),
* ``reference.npz``: inputs (``input_features``, ``is_longer``, ``input_ids``, ``attention_mask``) and
  transformers' outputs (``audio_embeds``, ``text_embeds``, ``logits_per_audio``, ``logits_per_text``,
  ``audio_pooled``: the audio tower's pooled vector before projection).

Every tensor is redrawn at random, biases, position tables and the relative-position bias included:
transformers' own init zeroes those, and a zero tensor would hide one the port forgot to load. BatchNorm
statistics stay sensible (positive variances).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

CAPTIONS = [
    "a dog barks twice in the distance",
    "rain falls on a tin roof while thunder rolls",
    "a man speaks softly over a crackling fire",
    "birds chirp in the morning near a river",
    "a car engine starts and drives away",
    "people clap and cheer at a concert",
    "a piano plays a slow sad melody",
    "wind blows through tall grass and leaves",
    "a door creaks open and slams shut",
    "water drips from a tap into a sink",
]


def tiny_config(fused: bool = False) -> dict:
    """A ClapConfig small enough to commit, that still exercises every code path.

    Audio: a 64x64 image of 16 mel bins (freq_ratio 4, time resized to 256 frames), 4x4 patches, 3 Swin stages on
    16x16, 8x8 and 4x4 grids with window 4 (shifted windows in the first two, the last grid is one window).
    """
    return {
        "architectures": ["ClapModel"],
        "model_type": "clap",
        "projection_dim": 24,
        "logit_scale_init_value": 1 / 0.07,
        "projection_hidden_act": "relu",
        "audio_config": {
            "model_type": "clap_audio_model",
            "spec_size": 64,
            "num_mel_bins": 16,
            "window_size": 4,
            "patch_size": 4,
            "patch_stride": [4, 4],
            "depths": [2, 2, 2],
            "num_attention_heads": [2, 2, 4],
            "patch_embeds_hidden_size": 8,
            "hidden_size": 32,
            "enable_fusion": fused,
            "fusion_type": "aff_2d" if fused else None,
            "aff_block_r": 4,
        },
        "text_config": {
            "model_type": "clap_text_model",
            "vocab_size": 320,
            "hidden_size": 24,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": 48,
            "max_position_embeddings": 80,
            "type_vocab_size": 1,
        },
    }


def full_config(fused: bool = False) -> dict:
    """The architecture of ``laion/clap-htsat-unfused`` (or ``-fused``): transformers' defaults, 768/512 wide."""
    return {
        "architectures": ["ClapModel"],
        "model_type": "clap",
        "projection_dim": 512,
        "logit_scale_init_value": 14.285714285714285,
        "projection_hidden_act": "relu",
        "audio_config": {"model_type": "clap_audio_model", "enable_fusion": fused, "fusion_type": None},
        "text_config": {"model_type": "clap_text_model", "vocab_size": 50265},
    }


def redraw_weights(model, seed: int) -> None:
    """Give every parameter and buffer of a ``transformers.ClapModel`` random values (deterministic per seed)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith(("relative_position_index", "position_ids", "token_type_ids")):
                continue  # structural indices, fixed by the config
            if name.endswith("num_batches_tracked"):
                tensor.fill_(int(torch.randint(1, 1000, (1,), generator=generator)))
            elif name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) * 1.5 + 0.5)
            elif name.endswith("running_mean"):
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.5)
            elif name.startswith("logit_scale"):
                tensor.fill_(math.log(10.0) + float(torch.rand(1, generator=generator)))
            elif tensor.ndim == 1 or "relative_position_bias_table" in name or "embeddings" in name:
                # Biases, norm gains/shifts, position/type/word tables: O(1) values, never zero.
                gain = (
                    1.0 if tensor.ndim == 1 and name.endswith(".weight") else 0.0
                )  # LayerNorm/BatchNorm scale
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.2 + gain)
            else:
                fan_in = int(np.prod(tensor.shape[1:]))
                tensor.copy_(torch.randn(tensor.shape, generator=generator) / math.sqrt(fan_in))


def build_model(config: dict, seed: int):
    """A ``transformers.ClapModel`` in eval mode with redrawn weights."""
    import torch
    from transformers import ClapConfig, ClapModel

    torch.manual_seed(seed)
    model = ClapModel(ClapConfig(**config)).eval()
    redraw_weights(model, seed)
    return model


def write_tokenizer(out: Path, vocab_size: int) -> None:
    """Train a byte-level BPE on :data:`CAPTIONS` in RoBERTa's format (ids: <s> 0, <pad> 1, </s> 2, <unk> 3).

    Also writes the slow-tokenizer files (``vocab.json``, ``merges.txt``) real checkpoints ship alongside.
    """
    from audiotrain.models.clap.tokenizer import ClapTokenizer

    tokenizer = ClapTokenizer.train(CAPTIONS * 4, vocab_size=vocab_size)
    tokenizer.save_pretrained(out)
    model_json = json.loads((out / "tokenizer.json").read_text())["model"]
    (out / "vocab.json").write_text(json.dumps(model_json["vocab"]))
    merges = [m if isinstance(m, str) else " ".join(m) for m in model_json["merges"]]
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")


def write_preprocessor(out: Path, config: dict) -> None:
    """transformers' ``ClapFeatureExtractor`` settings for this mel size (what a checkpoint ships)."""
    from transformers import ClapFeatureExtractor

    mel = config["audio_config"].get("num_mel_bins", 64)
    fused = config["audio_config"].get("enable_fusion", False)
    extractor = ClapFeatureExtractor(feature_size=mel, truncation="fusion" if fused else "rand_trunc")
    extractor.save_pretrained(str(out))


def make_inputs(config: dict, clips: int, seed: int, tokenizer_dir: Path) -> dict[str, np.ndarray]:
    """Random log-mel-like features (shorter than the model's width so the bicubic resize runs) and captions."""
    from audiotrain.models.clap.tokenizer import ClapTokenizer

    audio = config["audio_config"]
    mel = audio.get("num_mel_bins", 64)
    spec = audio.get("spec_size", 256)
    frames = spec * (spec // mel) - 23 if spec < 256 else 1001
    channels = 4 if audio.get("enable_fusion") else 1
    rng = np.random.default_rng(seed)
    features = (rng.standard_normal((clips, channels, frames, mel)) * 2.0 - 5.0).astype(np.float32)
    is_longer = np.zeros((clips, 1), dtype=bool)
    is_longer[::2] = True  # a mix, so the fused model runs both branches
    # One more text than clips, so logits_per_audio and logits_per_text are not square.
    texts = [CAPTIONS[i % len(CAPTIONS)] for i in range(clips + 1)]
    tokens = ClapTokenizer.from_pretrained(tokenizer_dir, max_length=min(77, _max_tokens(config)))(texts)
    return {
        "input_features": features,
        "is_longer": is_longer,
        "input_ids": tokens["input_ids"],
        "attention_mask": tokens["attention_mask"],
    }


def _max_tokens(config: dict) -> int:
    text = config["text_config"]
    return text.get("max_position_embeddings", 514) - text.get("pad_token_id", 1) - 1


def reference_outputs(model, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """transformers' float32 outputs for ``inputs``."""
    import torch

    with torch.no_grad():
        out = model(
            input_features=torch.from_numpy(inputs["input_features"]),
            is_longer=torch.from_numpy(inputs["is_longer"]),
            input_ids=torch.from_numpy(inputs["input_ids"]).long(),
            attention_mask=torch.from_numpy(inputs["attention_mask"]).long(),
        )
        pooled = model.audio_model(
            input_features=torch.from_numpy(inputs["input_features"]),
            is_longer=torch.from_numpy(inputs["is_longer"]),
        ).pooler_output
    return {
        "audio_embeds": out.audio_embeds.numpy(),
        "text_embeds": out.text_embeds.numpy(),
        "logits_per_audio": out.logits_per_audio.numpy(),
        "logits_per_text": out.logits_per_text.numpy(),
        "audio_pooled": pooled.numpy(),
    }


def write_fixture(
    out: str | Path,
    config: dict,
    seed: int = 0,
    clips: int = 3,
    formats: tuple[str, ...] = ("safetensors", "bin"),
) -> Path:
    """Write a whole checkpoint folder plus ``reference.npz``; returns the folder."""
    import torch
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = build_model(config, seed)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    model.config.save_pretrained(str(out))
    if "safetensors" in formats:
        save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    if "bin" in formats:
        torch.save(state, str(out / "pytorch_model.bin"))
    # A few hundred merges cover the captions; ids stay below any text_config.vocab_size used here.
    write_tokenizer(out, min(config["text_config"].get("vocab_size", 50265), 320))
    write_preprocessor(out, config)
    inputs = make_inputs(config, clips, seed, out)
    np.savez(out / "reference.npz", **inputs, **reference_outputs(model, inputs))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="folder to write (created)")
    parser.add_argument("--size", choices=("tiny", "full"), default="tiny")
    parser.add_argument("--fused", action="store_true", help="the fusion (4-view) variant")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clips", type=int, default=3)
    parser.add_argument("--formats", default="safetensors,bin", help="comma list of safetensors,bin")
    args = parser.parse_args()
    import audiotrain  # noqa: F401  (loads the BLAS before mlx, which the tokenizer import pulls in)

    config = tiny_config(args.fused) if args.size == "tiny" else full_config(args.fused)
    folder = write_fixture(args.out, config, args.seed, args.clips, tuple(args.formats.split(",")))
    sizes = {p.name: p.stat().st_size for p in sorted(folder.iterdir())}
    print(json.dumps({"folder": str(folder), "bytes": sizes}, indent=2))


if __name__ == "__main__":
    main()
