"""A small fit for the data-parallel tests: run as one process or as each rank of a job (tests/distributed.py).

python tests/dp_job.py BATCH OUT MAX_STEPS CKPT_OR_- ROOT [raise] [every=N]

every=N also keeps a checkpoint every N optimizer steps (ModelCheckpoint(every_n_train_steps=N)).
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import audiotrain  # noqa: E402,F401  (before mlx)
from audiotrain import DataLoader, Dataset, Trainer, seed_everything  # noqa: E402
from audiotrain.distributed import collectives  # noqa: E402
from audiotrain.train.callbacks import ModelCheckpoint  # noqa: E402
from audiotrain.train.loggers import CSVLogger  # noqa: E402

import numpy as np  # noqa: E402
from tasks import TinyClassifier, make_data, weights  # noqa: E402


class Data(Dataset):
    def __init__(self, n):
        self.x, self.y = make_data(n)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


class RaisesOnRankOne(TinyClassifier):
    def on_train_batch_end(self, outputs, batch, batch_idx):
        if collectives.rank() == 1 and batch_idx == 1:
            raise RuntimeError("a bug that only rank 1 meets")


def main() -> None:
    batch, out, max_steps, ckpt, root = sys.argv[1:6]
    options = sys.argv[6:]
    fail = "raise" in options
    every = [int(o.split("=")[1]) for o in options if o.startswith("every=")]
    callbacks = (
        [ModelCheckpoint(every_n_train_steps=every[0], save_top_k=-1, save_last=True)] if every else []
    )
    seed_everything(0)
    module = RaisesOnRankOne() if fail else TinyClassifier()
    trainer = Trainer(
        max_steps=int(max_steps),
        default_root_dir=root,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
        gradient_clip_val=1.0,
        logger=CSVLogger(root),
        callbacks=callbacks,
    )
    train = DataLoader(Data(64), batch_size=int(batch), shuffle=True, seed=3)
    val = DataLoader(Data(45), batch_size=int(batch))  # 45: under data parallel a rank is a sample short
    trainer.fit(module, train, val, ckpt_path=None if ckpt == "-" else ckpt)
    np.savez(
        f"{out}-rank{collectives.rank()}.npz",
        val_loss=trainer.callback_metrics["val_loss"],
        step=trainer.global_step,
        history=json.dumps(trainer.history),
        **{f"w.{k}": v for k, v in weights(module).items()},
    )


if __name__ == "__main__":
    main()
