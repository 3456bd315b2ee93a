"""Full-size CLAP fine-tuning step: peak memory and seconds per step, MLX vs PyTorch, on CPU or CUDA.

Builds a randomly initialised model with the ``laion/clap-htsat-unfused`` sizes (HTSAT: depths 2-2-6-2,
96..768 channels, 256x256 image; RoBERTa-base text tower; 512-d projections; about 153 M parameters —
nothing can be downloaded here, and the step cost does not depend on the weight values) and times one
training step at batch 8: 10 s clips as [8, 1, 1001, 64] log-mels, 77-token captions, LAION's symmetric
InfoNCE, AdamW, BatchNorm in eval mode, dropout on.

- MLX: the recipe's path — `CLAPTrainModule` and the Trainer's compiled `TrainStep` (forward, backward,
  AdamW update in one `mx.compile`d graph), then the logit-scale clamp.
- PyTorch: ``transformers.ClapModel`` with the same config, the same loss and ``torch.optim.AdamW``.

Each framework runs in its own subprocess (so their memory does not mix) with the same thread count; the
script prints seconds per step (median of the timed steps, after warm-up steps that include compilation),
the peak resident memory of each process (``ru_maxrss``) and, for MLX, the allocator's peak, then the
MLX / PyTorch step-time ratio. Run (about 4 minutes on 2 cores)::

    python benchmarks/clap.py [--batch 8 --steps 2 --warmup 1] [--only mlx]

Measured 2026-11-21 on the 2-core Zen 5 EPYC (24 GiB), mlx 0.32.4 (mlx[cpu]) + system OpenBLAS
(OPENBLAS_CORETYPE unset, i.e. autodetected), torch 2.13.0 (2 threads), transformers 5.23.0, batch 8,
while other jobs shared the machine (load average 6-8, so absolute times are inflated; both frameworks
ran back to back under similar load):

    mlx 0.32.4: 153.5 M params, 22.74 s/step (first step 36.9 s), peak RSS 5.05 GiB, MLX allocator peak 4.37 GiB
    torch 2.13.0+cpu, transformers 5.23.0: 153.5 M params, 45.61 s/step (first step 45.0 s), peak RSS 4.71 GiB
    step time MLX / PyTorch: 0.50x

Full-size fine-tuning at batch 8 therefore fits the 24 GiB machine with a wide margin (~5 GiB: 0.6 GiB
of weights, 1.2 GiB of AdamW moments, gradients and activations).

Measured 2026-11-22 on an NVIDIA H100 80GB (mlx 0.32.4 with mlx-cuda-13, Python 3.12; PyTorch on the same
GPU), ``--batch 8 --steps 10 --warmup 3``, float32 without TF32 in both (audiotrain's default):

    mlx 0.32.4 (Device(gpu, 0)): 0.085 s/step (first step 89.1 s: a cold NVRTC kernel cache), MLX allocator peak 5.06 GiB
    torch 2.11.0+cu130 (cuda), transformers 5.17.0: 0.091 s/step (first step 1.3 s), CUDA allocator peak 3.44 GiB
    step time MLX / PyTorch: 0.93x

With ``MLX_ENABLE_TF32=1`` (and TF32 in PyTorch too): 0.084 against 0.093 s/step, 0.90x; MLX's first step
took 2.4 s with the kernels cached by the run before.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

BATCH, FRAMES, MELS, TOKENS = 8, 1001, 64, 77

# laion/clap-htsat-unfused config.json, the values that define the architecture.
TEXT = dict(
    vocab_size=50265,
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    max_position_embeddings=514,
    type_vocab_size=1,
    hidden_act="gelu",
    layer_norm_eps=1e-12,
)
AUDIO = dict(
    window_size=8,
    num_mel_bins=64,
    spec_size=256,
    patch_size=4,
    patch_stride=[4, 4],
    depths=[2, 2, 6, 2],
    num_attention_heads=[4, 8, 16, 32],
    patch_embeds_hidden_size=96,
    hidden_size=768,
    enable_fusion=False,
    hidden_act="gelu",
)
TOP = dict(projection_dim=512, projection_hidden_act="relu", logit_scale_init_value=14.285714285714285)


def _inputs(batch: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    feats = rng.normal(-40, 15, size=(batch, 1, FRAMES, MELS)).astype(np.float32)
    ids = rng.integers(3, TEXT["vocab_size"], size=(batch, TOKENS)).astype(np.int64)
    ids[:, 0], ids[:, -1] = 0, 2
    mask = np.ones((batch, TOKENS), dtype=np.int64)
    return feats, ids, mask


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def run_mlx(batch: int, steps: int, warmup: int) -> dict:
    import audiotrain  # noqa: F401  (OpenBLAS before mlx.core)

    # isort: split
    from audiotrain.models.clap import ClapAudioConfig, ClapConfig, ClapModel, ClapTextConfig
    from audiotrain.recipes.clap.task import CLAPTaskConfig, CLAPTrainModule
    from audiotrain.train.step import StepConfig, TrainStep

    import mlx.core as mx
    from mlx.utils import tree_flatten

    audio = {**AUDIO, "patch_stride": tuple(AUDIO["patch_stride"]), "depths": tuple(AUDIO["depths"])}
    audio["num_attention_heads"] = tuple(AUDIO["num_attention_heads"])
    config = ClapConfig(text_config=ClapTextConfig(**TEXT), audio_config=ClapAudioConfig(**audio), **TOP)
    mx.random.seed(0)
    task = CLAPTrainModule(ClapModel(config), CLAPTaskConfig(learning_rate=1e-5))
    task.train()
    optimizer = task.configure_optimizers().optimizer
    optimizer.init(task.trainable_parameters())
    step = TrainStep(task, optimizer, StepConfig())
    feats, ids, mask = _inputs(batch)
    batch_ = {
        "input_features": mx.array(feats),
        "is_longer": mx.zeros((batch,), dtype=mx.bool_),
        "input_ids": mx.array(ids.astype("int32")),
        "attention_mask": mx.array(mask.astype("int32")),
    }
    mx.eval(task.parameters(), optimizer.state)
    mx.reset_peak_memory()
    one = mx.array(1.0)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        loss, *_ = step.update(batch_, mx.array(i, mx.int32), one)
        mx.eval(step.eval_targets, loss)
        task.clamp_logit_scales()
        mx.eval(task.clap.logit_scale_a)
        times.append(time.perf_counter() - start)
        print(f"  mlx step {i}: {times[-1]:.2f} s (loss {loss.item():.4f})", file=sys.stderr, flush=True)
    n_params = sum(v.size for _, v in tree_flatten(task.parameters()))
    return {
        "framework": f"mlx {mx.__version__} ({mx.default_device()})",
        "params": int(n_params),
        "step_s": statistics.median(times[warmup:]),
        "first_step_s": times[0],
        "peak_rss_gib": _peak_rss_gib(),
        "mlx_peak_gib": mx.get_peak_memory() / 2**30,
    }


def _torch_device(choice: str):
    import torch

    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(choice)


def run_torch(batch: int, steps: int, warmup: int, device_choice: str = "auto") -> dict:
    import audiotrain._precision as precision

    import torch
    import torch.nn.functional as F
    from transformers import ClapConfig, ClapModel

    device = _torch_device(device_choice)
    # The same float32 matmul precision as the MLX child (audiotrain's default: full float32, no TF32).
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = precision.tf32_enabled()
    torch.manual_seed(0)
    config = ClapConfig(text_config=TEXT, audio_config=AUDIO, **TOP)
    model = ClapModel(config).to(device)
    model.train()
    for module in model.modules():  # the same BatchNorm-in-eval fine-tuning setup
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eval()
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.0}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-5
    )
    feats, ids, mask = _inputs(batch)
    feats, ids, mask = (torch.from_numpy(a).to(device) for a in (feats, ids, mask))
    is_longer = torch.zeros((batch, 1), dtype=torch.bool, device=device)
    labels = torch.arange(batch, device=device)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        audio = model.get_audio_features(input_features=feats, is_longer=is_longer)
        text = model.get_text_features(input_ids=ids, attention_mask=mask)
        audio = getattr(audio, "pooler_output", audio)
        text = getattr(text, "pooler_output", text)
        audio, text = F.normalize(audio, dim=-1), F.normalize(text, dim=-1)
        logits = model.logit_scale_a.exp() * audio @ text.T
        loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale_a.clamp_(0, 4.605170185988092)
            model.logit_scale_t.clamp_(0, 4.605170185988092)
        if device.type == "cuda":
            torch.cuda.synchronize()  # CUDA kernels run asynchronously: the step ends when they do
        times.append(time.perf_counter() - start)
        print(f"  torch step {i}: {times[-1]:.2f} s (loss {loss.item():.4f})", file=sys.stderr, flush=True)
    return {
        "framework": f"torch {torch.__version__} ({device.type}), transformers "
        f"{__import__('transformers').__version__}",
        "params": int(sum(p.numel() for p in model.parameters())),
        "step_s": statistics.median(times[warmup:]),
        "first_step_s": times[0],
        "peak_rss_gib": _peak_rss_gib(),
        "threads": torch.get_num_threads(),
        **({"cuda_peak_gib": torch.cuda.max_memory_allocated() / 2**30} if device.type == "cuda" else {}),
    }


def _child(framework: str, args) -> dict | None:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        framework,
        "--batch",
        str(args.batch),
        "--steps",
        str(args.steps),
    ]
    cmd += ["--warmup", str(args.warmup), "--torch-device", args.torch_device]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=os.environ)
    if proc.returncode != 0:
        print(f"{framework}: failed with exit code {proc.returncode}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--batch",
        type=int,
        default=BATCH,
        help=f"pairs per step (default {BATCH}; at least 2, as the recipe's)",
    )
    parser.add_argument("--steps", type=int, default=2, help="timed steps (after warm-up)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed first steps (compilation, allocation)")
    parser.add_argument("--only", choices=("mlx", "torch"), default=None)
    parser.add_argument(
        "--torch-device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where PyTorch runs (auto: CUDA when available; MLX runs on its default device)",
    )
    parser.add_argument("--child", choices=("mlx", "torch"), default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    # As the recipe (--train.batch_size): over one pair the InfoNCE loss is 0 with no gradient, so a step at
    # batch 1 measures nothing the recipe runs.
    if args.batch < 2:
        parser.error(
            f"--batch must be 2 or more, got {args.batch}: contrastive learning needs negatives in the batch "
            "(over one pair the loss is 0), and the recipe refuses a smaller --train.batch_size too"
        )
    if args.steps < 1 or args.warmup < 0:
        parser.error(f"--steps must be 1 or more and --warmup 0 or more, got {args.steps} and {args.warmup}")
    if args.child:
        if args.child == "mlx":
            result = run_mlx(args.batch, args.steps, args.warmup)
        else:
            result = run_torch(args.batch, args.steps, args.warmup, args.torch_device)
        print(json.dumps(result))
        return 0
    import audiotrain._precision as precision  # what the children will use
    from audiotrain._text import plural

    print(
        f"full-size CLAP (laion/clap-htsat-unfused sizes), batch {args.batch}, "
        f"{plural(args.steps, 'timed step')} after {args.warmup} warm-up; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}, {os.cpu_count()} CPUs, "
        f"float32 matmuls on CUDA (both frameworks): {precision.describe()}"
    )
    results = {}
    for framework in ("mlx", "torch"):
        if args.only not in (None, framework):
            continue
        if framework == "torch":
            try:
                import torch  # noqa: F401
                import transformers  # noqa: F401
            except ImportError:
                print("torch/transformers not installed: no PyTorch baseline")
                continue
        results[framework] = result = _child(framework, args)
        if result:
            extra = (
                f", MLX allocator peak {result['mlx_peak_gib']:.2f} GiB" if "mlx_peak_gib" in result else ""
            )
            if "cuda_peak_gib" in result:
                extra += f", CUDA allocator peak {result['cuda_peak_gib']:.2f} GiB"
            print(
                f"{result['framework']}: {result['params'] / 1e6:.1f} M params, {result['step_s']:.3f} s/step "
                f"(first step {result['first_step_s']:.1f} s), peak RSS {result['peak_rss_gib']:.2f} GiB{extra}"
            )
    if results.get("mlx") and results.get("torch"):
        print(f"step time MLX / PyTorch: {results['mlx']['step_s'] / results['torch']['step_s']:.2f}x")
    failed = [framework for framework, result in results.items() if result is None]
    if failed:  # a CI job or a shell loop must not count a failed run as a benchmark
        print(f"error: the {' and '.join(failed)} run failed (its output is above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
