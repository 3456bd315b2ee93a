"""The seed documents' examples, unchanged but for `mlx_audio` → `audiotrain`, on small data.

Only sizes (dataset size, epochs) are made small; the user code is as the seeds print it.
"""

import numpy as np
import pytest


def test_quick_example(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # --- seed 000, "Quick Example" (train_loader / val_loader built with seed 000's DataLoader section)
    from audiotrain import DataLoader, Dataset, OptimizerConfig, Trainer, TrainModule

    import mlx.core as mx
    import mlx.nn as nn
    import mlx.optimizers as optim

    class MyModel(TrainModule):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(784, 10)

        def __call__(self, x):
            return self.linear(x)

        def compute_loss(self, batch):
            x, y = batch["x"], batch["y"]
            logits = self(x)
            loss = mx.mean(nn.losses.cross_entropy(logits, y))
            accuracy = mx.mean(mx.argmax(logits, axis=-1) == y)
            return loss, {"accuracy": accuracy}

        def configure_optimizers(self):
            return OptimizerConfig(optimizer=optim.AdamW(learning_rate=1e-4))

    class MyDataset(Dataset):
        def __len__(self):
            return 64

        def __getitem__(self, idx):
            return {"x": np.random.randn(784), "y": np.random.randint(10)}

    train_loader = DataLoader(MyDataset(), batch_size=32, shuffle=True, num_workers=2)
    val_loader = DataLoader(MyDataset(), batch_size=32)
    model = MyModel()
    trainer = Trainer(max_epochs=2)
    trainer.fit(model, train_loader, val_loader)
    assert trainer.global_step == 4
    assert (tmp_path / "logs" / "checkpoints" / "last" / "model.safetensors").exists()


def test_seed001_cnn_classifier(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    # --- seed 001, Example 1, steps 1-5 verbatim (sizes reduced) ---------------------------------
    from audiotrain.data import Dataset

    import numpy as np

    class MyDataset(Dataset):
        """Custom dataset for image classification."""

        def __init__(self, size: int = 1000, train: bool = True):
            self.size = size
            np.random.seed(42 if train else 123)

            # Generate synthetic data (replace with real data loading)
            self._images = np.random.randn(size, 28, 28).astype(np.float32)
            self._labels = np.random.randint(0, 10, size=size)

        def __len__(self) -> int:
            return self.size

        def __getitem__(self, idx: int) -> tuple:
            return self._images[idx], int(self._labels[idx])

    from audiotrain import OptimizerConfig, TrainModule
    from audiotrain.train.schedulers import WarmupCosineScheduler

    import mlx.core as mx
    import mlx.nn as nn
    import mlx.optimizers as optim

    class MNISTClassifier(TrainModule):
        """CNN classifier for MNIST."""

        def __init__(self):
            super().__init__()
            # Convolutional layers
            self.conv1 = nn.Conv2d(1, 32, kernel_size=3, padding=1)
            self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
            self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
            # Fully connected layers
            self.fc1 = nn.Linear(64 * 7 * 7, 128)
            self.fc2 = nn.Linear(128, 10)

        def __call__(self, x: mx.array) -> mx.array:
            # Add channel dimension: [B, 28, 28] -> [B, 28, 28, 1]
            if x.ndim == 3:
                x = x[:, :, :, None]

            # Conv blocks
            x = nn.relu(self.conv1(x))
            x = self.pool(x)
            x = nn.relu(self.conv2(x))
            x = self.pool(x)

            # Flatten and FC
            x = x.reshape(x.shape[0], -1)
            x = nn.relu(self.fc1(x))
            return self.fc2(x)

        def compute_loss(self, batch: tuple) -> tuple[mx.array, dict[str, mx.array]]:
            """Compute cross-entropy loss and accuracy."""
            images, labels = batch

            logits = self(images)
            loss = mx.mean(nn.losses.cross_entropy(logits, labels))

            predictions = mx.argmax(logits, axis=-1)
            accuracy = mx.mean(predictions == labels)

            return loss, {"accuracy": accuracy}

        def configure_optimizers(self) -> OptimizerConfig:
            """Configure AdamW with warmup + cosine decay."""
            total_steps = self.trainer.max_steps or 1000
            warmup_steps = min(100, total_steps // 10)

            schedule = WarmupCosineScheduler(
                peak_lr=1e-3,
                warmup_steps=warmup_steps,
                total_steps=total_steps,
                min_lr=1e-5,
            )

            return OptimizerConfig(
                optimizer=optim.AdamW(learning_rate=schedule, weight_decay=0.01),
                lr_schedule_name="warmup_cosine",
            )

    from audiotrain import DataLoader

    def to_mlx_batch(batch: list) -> tuple[mx.array, mx.array]:
        """Convert batch to MLX arrays."""
        images = np.stack([item[0] for item in batch])
        labels = np.array([item[1] for item in batch])
        return mx.array(images), mx.array(labels)

    # Create datasets
    train_dataset = MyDataset(size=48, train=True)
    val_dataset = MyDataset(size=16, train=False)

    # Create dataloaders
    train_loader = DataLoader(
        train_dataset,
        batch_size=16,
        shuffle=True,
        collate_fn=lambda x: x,  # Return list
        mlx_transforms=to_mlx_batch,  # Convert to MLX in main thread
    )

    val_loader = DataLoader(
        val_dataset,
        batch_size=16,
        shuffle=False,
        collate_fn=lambda x: x,
        mlx_transforms=to_mlx_batch,
    )

    from audiotrain import Trainer
    from audiotrain.train.callbacks import (
        EarlyStopping,
        LearningRateMonitor,
        ModelCheckpoint,
        ProgressBar,
    )

    # Create callbacks
    callbacks = [
        ProgressBar(refresh_rate=10),
        LearningRateMonitor(logging_interval="step"),
        ModelCheckpoint(
            dirpath="./checkpoints",
            monitor="val_accuracy",
            mode="max",
            save_top_k=2,
        ),
        EarlyStopping(
            monitor="val_accuracy",
            mode="max",
            patience=5,
            min_delta=0.001,
        ),
    ]

    # Create trainer
    trainer = Trainer(
        max_epochs=2,
        gradient_clip_val=1.0,
        callbacks=callbacks,
        seed=42,
    )

    model = MNISTClassifier()
    print(f"Parameters: {sum(p.size for p in model.parameters().values()):,}")

    trainer.fit(model, train_loader, val_loader)
    # --- end of seed code ----------------------------------------------------------------------
    assert "Parameters: 421,642" in capsys.readouterr().out
    assert trainer.global_step == 6
    assert len(list((tmp_path / "checkpoints").iterdir())) == 2
    assert trainer.history["val_accuracy"][-1] is not None


def test_custom_callback_and_multiple_loggers(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    pytest.importorskip("tensorboardX")
    from audiotrain import Trainer

    # --- seed 000, "Custom Callbacks" verbatim ----------------------------------------------------
    from audiotrain.train.callbacks import Callback

    from tasks import TinyClassifier, make_batches

    class MyCallback(Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if batch_idx % 100 == 0:
                print(f"Step {trainer.global_step}: loss = {outputs['loss']:.4f}")

    # --- seed 000, "Multiple Loggers" ---------------------------------------------------------------
    from audiotrain.train.loggers import TensorBoardLogger, WandbLogger

    trainer = Trainer(
        logger=[
            WandbLogger(project="my-project", name="experiment-1", config={"lr": 1e-4, "batch_size": 32}),
            TensorBoardLogger(log_dir="./tb_logs", name="experiment-1"),
        ],
        callbacks=[MyCallback()],
        max_epochs=1,
        log_every_n_steps=1,
    )
    trainer.fit(TinyClassifier(), make_batches())
    out = capsys.readouterr().out
    assert "Step 1: loss = " in out
    assert list((tmp_path / "tb_logs").rglob("events.out.tfevents*"))
    wandb_logger = trainer.loggers[0]
    assert wandb_logger.version is not None and wandb_logger.failures == 0  # a real (offline) run, no errors
