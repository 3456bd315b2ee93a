"""Seed 001, Example 2 (fine-tuning CLAP) as written but for `mlx_audio` → `audiotrain`, and the `CLAP` class.

`CLAP()` loads laion/clap-htsat-unfused from the Hugging Face cache; the tests put small random weights of the
same layout (64 mel bins, RoBERTa's 50265-token vocabulary) there, so nothing is downloaded.
"""

import json
from pathlib import Path

from audiotrain.models.clap import (
    CLAP,
    CheckpointError,
    ClapConfig,
    ClapModel,
    load_pretrained,
    save_pretrained,
)
from audiotrain.models.clap.clap import DEFAULT_CHECKPOINT

import mlx.core as mx
import numpy as np
import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "clap_tiny"
COMMIT = "89abcdef0123456789abcdef0123456789abcdef"


def small_unfused_config() -> ClapConfig:
    """The committed tiny config resized to the seed's inputs: 64 mel bins, up to 256 frames, 50265 tokens."""
    data = json.loads((FIXTURE / "config.json").read_text())
    data["audio_config"].update(num_mel_bins=64, spec_size=128, patch_size=8, patch_stride=[8, 8])
    data["text_config"].update(vocab_size=50265, hidden_size=16, intermediate_size=32)
    return ClapConfig.from_dict(data)


def offline_hf_cache(tmp_path: Path, monkeypatch) -> Path:
    """An empty Hugging Face cache in a temporary HF_HOME, offline; any network call fails the test."""
    import huggingface_hub
    from huggingface_hub import constants

    def no_network(*args, **kwargs):
        raise AssertionError("a test tried to reach the Hugging Face hub")

    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    for name in ("model_info", "list_repo_files", "repo_info", "hf_hub_download"):
        monkeypatch.setattr(huggingface_hub, name, no_network)
    return home / "hub"


@pytest.fixture
def cached_default_clap(tmp_path, monkeypatch) -> Path:
    """Small random weights cached as laion/clap-htsat-unfused (huggingface_hub's layout); the snapshot."""
    hub = offline_hf_cache(tmp_path, monkeypatch)
    repo = hub / ("models--" + DEFAULT_CHECKPOINT.replace("/", "--"))
    snapshot = repo / "snapshots" / COMMIT
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    mx.random.seed(3)
    model = ClapModel(small_unfused_config())
    save_pretrained(model, model.config, snapshot, extractor_dir=FIXTURE, tokenizer=FIXTURE)
    return snapshot


def test_clap_loads_the_default_checkpoint_from_the_cache(cached_default_clap):
    clap = CLAP()
    assert clap.config.source == cached_default_clap
    # The seed's names are ClapModel's own modules, not copies.
    assert clap.audio_encoder is clap.audio_model and clap.text_encoder is clap.text_model
    reference, _ = load_pretrained(cached_default_clap)
    rng = np.random.default_rng(0)
    mel = mx.array(rng.standard_normal((2, 1, 64, 256)).astype(np.float32))  # the seed's layout
    ids = mx.array(rng.integers(0, 50265, (3, 12)).astype(np.int32))
    mask = mx.ones((3, 12), dtype=mx.int32)
    out = clap(mel, ids, mask)
    expected = reference(mel.transpose(0, 1, 3, 2), ids, mask)  # transformers' layout
    assert out["logits_per_audio"].shape == (2, 3) and out["logits_per_text"].shape == (3, 2)
    for key in ("logits_per_audio", "logits_per_text", "audio_embeds", "text_embeds"):
        np.testing.assert_allclose(np.array(out[key]), np.array(expected[key]), rtol=1e-5, atol=1e-6)
    # transformers' layout gives the same numbers; so does the call without a channel axis.
    same = clap(mel.transpose(0, 1, 3, 2), ids, mask)["logits_per_audio"]
    np.testing.assert_allclose(np.array(same), np.array(out["logits_per_audio"]), rtol=1e-6)
    only_audio = clap(audio=mel[:, 0])
    assert set(only_audio) == {"audio_embeds"}


def test_clap_from_pretrained_folder_and_bad_mel_shapes():
    clap = CLAP.from_pretrained(FIXTURE)
    assert clap.config.audio_config.num_mel_bins == 16
    with pytest.raises(ValueError, match="no axis of 16 mel bins"):
        clap(mx.zeros((1, 1, 64, 32)), mx.zeros((1, 4), dtype=mx.int32))
    with pytest.raises(ValueError, match="pass audio"):
        clap()


def test_clap_scores_text_against_audio_with_the_text_temperature():
    """A trained checkpoint's two temperatures differ (the committed fixture's too): logits_per_text is
    scaled by exp(logit_scale_t), as transformers' reference holds it."""
    ref = dict(np.load(FIXTURE / "reference.npz"))
    clap = CLAP.from_pretrained(FIXTURE)
    assert clap.logit_scale_a.item() != pytest.approx(clap.logit_scale_t.item(), rel=1e-2)
    out = clap(ref["input_features"], ref["input_ids"], ref["attention_mask"])
    for key in ("logits_per_audio", "logits_per_text"):
        np.testing.assert_allclose(np.array(out[key]), ref[key], rtol=1e-4, atol=1e-5, err_msg=key)


def test_clap_reads_as_many_frames_as_mel_bins_in_transformers_layout():
    """With exactly num_mel_bins frames both axes fit; the docstring's rule: transformers' layout."""
    clap = CLAP.from_pretrained(FIXTURE)
    square = mx.array(np.random.default_rng(0).standard_normal((2, 1, 16, 16)).astype(np.float32))
    expected = clap.get_audio_features(square)  # (ClapModel's: transformers' layout only)
    np.testing.assert_allclose(np.array(clap(square)["audio_embeds"]), np.array(expected), rtol=1e-6)
    transposed = clap.get_audio_features(square.transpose(0, 1, 3, 2))
    assert not np.allclose(np.array(transposed), np.array(expected), atol=1e-4)  # (the layouts differ)


def test_clap_offline_and_uncached_says_what_to_download(tmp_path, monkeypatch):
    offline_hf_cache(tmp_path, monkeypatch)
    with pytest.raises(CheckpointError) as info:
        CLAP()
    message = str(info.value)
    assert "hf download laion/clap-htsat-unfused" in message
    assert "CLAP.from_pretrained('path/to/clap-htsat-unfused')" in message
    assert "not in the Hugging Face cache" in message


def test_seed001_clap_fine_tuning(cached_default_clap, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    # --- seed 001, Example 2, steps 1-4 verbatim (sizes and epochs reduced) -----------------------
    from audiotrain.data import Dataset

    import numpy as np

    class AudioTextDataset(Dataset):
        """Dataset of audio-text pairs."""

        def __init__(self, size: int = 500, train: bool = True):
            self.size = size
            np.random.seed(42 if train else 123)

            # Generate synthetic mel spectrograms and token IDs
            # In practice, load real audio and tokenize captions
            self._mels = [np.random.randn(1, 64, 256).astype(np.float32) for _ in range(size)]
            self._input_ids = [np.random.randint(0, 50265, size=64).astype(np.int32) for _ in range(size)]
            self._attention_masks = [np.ones(64, dtype=np.int32) for _ in range(size)]

        def __len__(self) -> int:
            return self.size

        def __getitem__(self, idx: int) -> dict:
            return {
                "mel": self._mels[idx],
                "input_ids": self._input_ids[idx],
                "attention_mask": self._attention_masks[idx],
            }

    from audiotrain import OptimizerConfig, TrainModule
    from audiotrain.train.schedulers import WarmupLinearScheduler

    import mlx.core as mx
    import mlx.nn as nn
    import mlx.optimizers as optim

    class CLAPTrainModule(TrainModule):
        """Fine-tuning wrapper for CLAP."""

        def __init__(self, freeze_audio: bool = False, freeze_text: bool = True):
            super().__init__()

            # Load pre-trained CLAP
            from audiotrain.models.clap import CLAP

            self.clap = CLAP()

            # Freeze encoders for efficient fine-tuning
            if freeze_audio:
                self.clap.audio_encoder.freeze()
                self.clap.audio_projection.freeze()
            if freeze_text:
                self.clap.text_encoder.freeze()

        def __call__(self, audio=None, input_ids=None, attention_mask=None):
            return self.clap(audio, input_ids, attention_mask)

        def compute_loss(self, batch: tuple) -> tuple[mx.array, dict[str, mx.array]]:
            """Compute contrastive loss (InfoNCE)."""
            mel, input_ids, attention_mask = batch

            outputs = self(audio=mel, input_ids=input_ids, attention_mask=attention_mask)

            logits_audio = outputs["logits_per_audio"]
            logits_text = outputs["logits_per_text"]
            batch_size = mel.shape[0]

            # Labels: diagonal is the correct match
            labels = mx.arange(batch_size)

            # Symmetric cross-entropy loss
            loss_audio = mx.mean(nn.losses.cross_entropy(logits_audio, labels))
            loss_text = mx.mean(nn.losses.cross_entropy(logits_text, labels))
            loss = (loss_audio + loss_text) / 2

            # Compute retrieval accuracy
            audio_preds = mx.argmax(logits_audio, axis=-1)
            text_preds = mx.argmax(logits_text, axis=-1)

            return loss, {
                "audio_acc": mx.mean(audio_preds == labels),
                "text_acc": mx.mean(text_preds == labels),
            }

        def configure_optimizers(self) -> OptimizerConfig:
            """Configure optimizer for fine-tuning."""
            total_steps = self.trainer.max_steps or 1000
            warmup_steps = min(200, total_steps // 5)

            schedule = WarmupLinearScheduler(
                peak_lr=5e-5,  # Lower LR for fine-tuning
                warmup_steps=warmup_steps,
                total_steps=total_steps,
            )

            return OptimizerConfig(
                optimizer=optim.AdamW(learning_rate=schedule, weight_decay=0.01),
                lr_schedule_name="warmup_linear",
            )

    from audiotrain import DataLoader

    def collate_fn(batch: list) -> tuple:
        """Collate audio-text pairs."""
        mels = np.stack([item["mel"] for item in batch])
        input_ids = np.stack([item["input_ids"] for item in batch])
        attention_masks = np.stack([item["attention_mask"] for item in batch])
        return mels, input_ids, attention_masks

    def to_mlx_batch(batch: tuple) -> tuple:
        """Convert to MLX arrays."""
        mels, input_ids, attention_masks = batch
        return mx.array(mels), mx.array(input_ids), mx.array(attention_masks)

    train_dataset = AudioTextDataset(size=16, train=True)
    val_dataset = AudioTextDataset(size=8, train=False)

    train_loader = DataLoader(
        train_dataset,
        batch_size=8,
        shuffle=True,
        collate_fn=collate_fn,
        mlx_transforms=to_mlx_batch,
    )

    val_loader = DataLoader(
        val_dataset,
        batch_size=8,
        shuffle=False,
        collate_fn=collate_fn,
        mlx_transforms=to_mlx_batch,
    )

    from audiotrain import Trainer
    from audiotrain.train.callbacks import (
        EarlyStopping,
        GradientClipper,
        LearningRateMonitor,
        ModelCheckpoint,
        ProgressBar,
    )
    from audiotrain.train.loggers import WandbLogger

    model = CLAPTrainModule(freeze_audio=False, freeze_text=True)

    # Check trainable parameters
    total = sum(p.size for p in model.parameters().values())
    trainable = sum(p.size for p in model.trainable_parameters().values())
    print(f"Total: {total:,}, Trainable: {trainable:,}")

    callbacks = [
        ProgressBar(refresh_rate=10),
        LearningRateMonitor(logging_interval="step"),
        GradientClipper(max_norm=1.0),  # Important for contrastive learning
        ModelCheckpoint(
            dirpath="./checkpoints/clap",
            monitor="val_loss",
            mode="min",
            save_top_k=2,
        ),
        EarlyStopping(
            monitor="val_loss",
            mode="min",
            patience=5,
        ),
    ]

    # Optional: Add logging
    logger = WandbLogger(project="clap-finetune", name="experiment-1")

    trainer = Trainer(
        max_epochs=2,
        callbacks=callbacks,
        logger=logger,
        seed=42,
    )

    trainer.fit(model, train_loader, val_loader)
    # --- end of seed code ----------------------------------------------------------------------
    # `parameters().values()` sums the top level only (as the seed prints it): the line is printed.
    assert "Total: " in capsys.readouterr().out
    assert trainer.global_step == 4
    assert trainer.history["val_loss"][-1] is not None and np.isfinite(trainer.history["val_loss"][-1])
    # The text tower was frozen, the audio tower trained.
    from mlx.utils import tree_flatten

    reference = CLAP()
    trained = dict(tree_flatten(model.clap.parameters()))
    before = dict(tree_flatten(reference.parameters()))
    assert all(
        np.array_equal(np.array(trained[k]), np.array(v)) for k, v in before.items() if "text_model" in k
    )
    assert any(
        not np.array_equal(np.array(trained[k]), np.array(v)) for k, v in before.items() if "audio_model" in k
    )
    assert len(list((tmp_path / "checkpoints" / "clap").iterdir())) == 2


def test_clap_loads_in_the_dtype_asked_for():
    for clap in (CLAP(FIXTURE, dtype=mx.bfloat16), CLAP.from_pretrained(FIXTURE, dtype=mx.bfloat16)):
        assert clap.text_projection.linear1.weight.dtype == mx.bfloat16
    assert CLAP.from_pretrained(FIXTURE).text_projection.linear1.weight.dtype == mx.float32


def test_clap_passes_is_longer_to_a_fused_checkpoints_audio_tower():
    """`CLAP(...)(audio, is_longer=...)` embeds as transformers does: the fused local views of the longer
    clips only."""
    fused = FIXTURE.parent / "clap_tiny_fused"
    ref = dict(np.load(fused / "reference.npz"))
    assert ref["is_longer"].any() and not ref["is_longer"].all()
    out = CLAP(fused)(audio=ref["input_features"], is_longer=ref["is_longer"])
    np.testing.assert_allclose(np.array(out["audio_embeds"]), ref["audio_embeds"], rtol=1e-5, atol=1e-6)


def test_a_clap_built_from_a_config_starts_at_the_configs_temperature():
    """logit_scale holds the log of the temperature scale (logits are scaled by its exp)."""
    config = small_unfused_config()
    clap = CLAP(config=config)
    for scale in (clap.logit_scale_a, clap.logit_scale_t):
        assert np.exp(scale.item()) == pytest.approx(config.logit_scale_init_value, rel=1e-6)


def test_clap_refuses_a_checkpoint_file_linked_from_outside_its_folder(tmp_path):
    """As load_pretrained: CLAP(folder) reads nothing from outside the folder, a config.json linked there
    included."""
    import shutil

    folder = tmp_path / "clap"
    shutil.copytree(FIXTURE, folder)
    outside = tmp_path / "elsewhere.json"
    (folder / "config.json").rename(outside)
    (folder / "config.json").symlink_to(outside)
    with pytest.raises(CheckpointError, match="config.json leads outside"):
        CLAP(folder)


def test_clap_of_another_missing_checkpoint_is_not_said_to_be_the_default_one(tmp_path, monkeypatch):
    """The download hint names laion/clap-htsat-unfused only when that is what was asked for."""
    offline_hf_cache(tmp_path, monkeypatch)
    with pytest.raises(CheckpointError) as info:
        CLAP(tmp_path / "nowhere")
    assert "nowhere" in str(info.value)
    assert DEFAULT_CHECKPOINT not in str(info.value)


def test_clap_from_pretrained_asks_for_the_revision_given(monkeypatch):
    import audiotrain.models.clap.clap as clap_module

    asked = []

    def resolve(path_or_id, revision):
        asked.append((str(path_or_id), revision))
        raise CheckpointError("not here")

    monkeypatch.setattr(clap_module, "resolve_checkpoint", resolve)
    with pytest.raises(CheckpointError, match="not here"):
        CLAP.from_pretrained("org/clap", revision="v2")
    assert asked == [("org/clap", "v2")]
