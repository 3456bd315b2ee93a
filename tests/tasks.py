"""Tiny tasks shared by the trainer tests."""

import audiotrain  # noqa: F401  (before mlx)
from audiotrain import OptimizerConfig, TrainModule

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np


class TinyClassifier(TrainModule):
    """Linear → ReLU → Dropout → Linear on 8 features, 3 classes."""

    def __init__(self, dropout: float = 0.0, lr=1e-2, hidden: int = 16, batchnorm: bool = False):
        super().__init__()
        self.fc1 = nn.Linear(8, hidden)
        self.norm = nn.BatchNorm(hidden) if batchnorm else None
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, 3)
        self.lr = lr

    def __call__(self, x):
        h = self.fc1(x)
        if self.norm is not None:
            h = self.norm(h)
        return self.fc2(self.drop(nn.relu(h)))

    def compute_loss(self, batch):
        x, y = batch
        logits = self(x)
        loss = mx.mean(nn.losses.cross_entropy(logits, y))
        return loss, {"accuracy": mx.mean(mx.argmax(logits, axis=-1) == y)}

    def configure_optimizers(self):
        return OptimizerConfig(optimizer=optim.AdamW(learning_rate=self.lr, weight_decay=0.01))


class Returns(TinyClassifier):
    """A TinyClassifier whose `configure_optimizers` returns `make(self)`: one of Lightning's return forms."""

    def __init__(self, make):
        super().__init__()
        self.make = make

    def configure_optimizers(self):
        return self.make(self)


def make_data(n: int = 96, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    y = ((x[:, 0] > 0).astype(np.int32) + (x[:, 1] > 0.5)).astype(np.int32)
    return x, y


def make_batches(n: int = 96, batch_size: int = 16, seed: int = 0):
    x, y = make_data(n, seed)
    return [
        (mx.array(x[i : i + batch_size]), mx.array(y[i : i + batch_size])) for i in range(0, n, batch_size)
    ]


def weights(module) -> dict:
    from mlx.utils import tree_flatten

    return {k: np.array(v) for k, v in tree_flatten(module.parameters())}


class RecordingLogger:
    """A logger that remembers everything (the Logger protocol the Trainer uses)."""

    def __init__(self):
        self.metrics: list[tuple[int, dict]] = []
        self.hparams: list[dict] = []
        self.status = None

    def log_hyperparams(self, params):
        self.hparams.append(params)

    def log_metrics(self, metrics, step):
        self.metrics.append((step, dict(metrics)))

    def finalize(self, status):
        self.status = status

    def state_dict(self):
        return {"n": len(self.metrics)}

    def load_state_dict(self, state):
        self.restored = state

    def keys(self):
        return {k for _, m in self.metrics for k in m}


def quiet_trainer(tmp_path, **kwargs):
    """A Trainer for tests: in `tmp_path`, no progress bar, no sanity check, no checkpoints (unless asked)."""
    from audiotrain import Trainer

    kwargs.setdefault("enable_progress_bar", False)
    kwargs.setdefault("enable_checkpointing", False)
    kwargs.setdefault("num_sanity_val_steps", 0)
    return Trainer(default_root_dir=tmp_path, **kwargs)
