"""Run by test_resume.py in fresh processes: train, optionally resume, save the final weights."""

import sys

import audiotrain  # noqa: F401
from audiotrain import DataLoader, OptimizerConfig, Trainer
from audiotrain.train.callbacks import ModelCheckpoint

import mlx.core as mx
import mlx.optimizers as optim
import numpy as np
from tasks import TinyClassifier, make_data


class Task(TinyClassifier):
    def configure_optimizers(self):
        schedule = optim.join_schedules(
            [optim.linear_schedule(0.0, 2e-2, 5), optim.cosine_decay(2e-2, 40)], [5]
        )
        return OptimizerConfig(
            optimizer=optim.AdamW(learning_rate=schedule), lr_schedule_name="warmup_cosine"
        )


class Pairs:
    def __init__(self):
        self.x, self.y = make_data(100, seed=0)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def main(out: str, root: str, max_steps: int, resume: str | None, every: int | None):
    mx.random.seed(0)
    module = Task(dropout=0.3, batchnorm=True)
    loader = DataLoader(Pairs(), batch_size=12, shuffle=True, num_workers=1)
    callbacks = (
        [ModelCheckpoint(dirpath=f"{root}/ckpt", every_n_train_steps=every, save_top_k=-1)] if every else []
    )
    trainer = Trainer(
        max_steps=max_steps,
        seed=5,
        accumulate_grad_batches=2,
        gradient_clip_val=1.0,
        default_root_dir=root,
        enable_progress_bar=False,
        callbacks=callbacks,
        enable_checkpointing=bool(every),
        log_every_n_steps=2,
    )
    trainer.fit(module, loader, ckpt_path=resume)
    from mlx.utils import tree_flatten

    np.savez(out, step=trainer.global_step, **{k: np.array(v) for k, v in tree_flatten(module.parameters())})


if __name__ == "__main__":
    out, root, steps, resume, every = sys.argv[1:6]
    main(out, root, int(steps), None if resume == "-" else resume, None if every == "-" else int(every))
