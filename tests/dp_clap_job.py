"""CLAP's contrastive fit for the data-parallel tests: one process over batch 8, or each rank over 4.

python tests/dp_clap_job.py BATCH OUT sgd|adamw
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import audiotrain  # noqa: E402,F401  (before mlx)
from audiotrain import DataLoader, Dataset, Trainer, seed_everything  # noqa: E402
from audiotrain.distributed import collectives  # noqa: E402
from audiotrain.models.clap import ClapModel  # noqa: E402
from audiotrain.recipes.clap.task import CLAPTaskConfig, CLAPTrainModule  # noqa: E402

import mlx.optimizers as optim  # noqa: E402
import numpy as np  # noqa: E402
from tasks import weights  # noqa: E402
from test_recipe_clap import tiny_config  # noqa: E402


class Pairs(Dataset):
    """16 random (mel, caption) pairs."""

    def __init__(self):
        rng = np.random.default_rng(0)
        self.mels = rng.normal(size=(16, 1, 100, 8)).astype(np.float32)
        self.ids = rng.integers(3, 64, size=(16, 12)).astype(np.int32)
        self.ids[:, 0] = 0

    def __len__(self):
        return len(self.mels)

    def __getitem__(self, i):
        return {
            "input_features": self.mels[i],
            "is_longer": np.zeros((1,), bool),
            "input_ids": self.ids[i],
            "attention_mask": np.ones(12, np.int32),
        }


class WithSGD(CLAPTrainModule):
    """Plain SGD: Adam's normalised step turns float32 rounding on near-zero gradients into updates of
    up to the learning rate, which would hide whether the losses' gradients agree."""

    def configure_optimizers(self):
        return optim.SGD(learning_rate=0.5)


def main() -> None:
    batch, out, optimizer = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    seed_everything(0)
    task = (WithSGD if optimizer == "sgd" else CLAPTrainModule)(
        ClapModel(tiny_config()), CLAPTaskConfig(learning_rate=1e-3, batchnorm_eval=True)
    )
    trainer = Trainer(
        max_steps=4, enable_progress_bar=False, enable_checkpointing=False, num_sanity_val_steps=0
    )
    trainer.fit(task, DataLoader(Pairs(), batch_size=batch, shuffle=True, seed=1))
    np.savez(
        f"{out}-rank{collectives.rank()}.npz",
        loss=np.array(trainer.history["train_loss"]),
        **{f"w.{k}": v for k, v in weights(task).items()},
    )


if __name__ == "__main__":
    main()
