"""Seed 003's Kaggle runs: cross-validation whose fold models' test predictions are averaged, and their CSV.

>>> trainer = audiotrain.create_kaggle_trainer(model, competition="titanic", test_dataloader=test_loader)
>>> cv_results = trainer.train_with_cv(train_loader)      # kaggle.cv_folds folds; cv_results.ensemble
>>> submission_path = trainer.create_submission()         # <cross-validation folder>/submission.csv

It is `ConfiguredTrainer` with the ``kaggle`` preset (``kaggle.enable_ensemble`` on) and the competition's
name as the run label. The rest of the seed's Kaggle module (pseudo-labelling, stacking, test-time
augmentation, submitting to Kaggle, competition presets such as ``titanic``) is not part of audiotrain.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from audiotrain._files import write_given_path
from audiotrain.cross_validation import CVResult
from audiotrain.declarative import ConfiguredTrainer, _main, create_trainer
from audiotrain.distributed import collectives
from audiotrain.train.callbacks import Callback
from audiotrain.train.module import TrainModule
from audiotrain.trainer_config import TrainerConfig

import numpy as np


class KaggleTrainer(ConfiguredTrainer):
    """`ConfiguredTrainer` whose `train_with_cv` predicts ``test_dataloader`` with every fold's best
    checkpoint (averaged into ``CVResult.ensemble``) and whose `create_submission` writes that average."""

    def __init__(
        self,
        module: TrainModule,
        config: TrainerConfig,
        callbacks: list[Callback] | None = None,
        test_dataloader: Any = None,
    ):
        super().__init__(module, config, callbacks)
        self.test_dataloader = test_dataloader
        self.cv_result: CVResult | None = None  # the last train_with_cv's

    def train_with_cv(
        self, data: Any, folds: int | None = None, groups: Any = None, **options: Any
    ) -> CVResult:
        """`ConfiguredTrainer.train_with_cv`, with ``test_loader`` defaulting to ``test_dataloader``."""
        if options.get("test_loader") is None:
            options["test_loader"] = self.test_dataloader
        self.cv_result = super().train_with_cv(data, folds, groups, **options)
        return self.cv_result

    def create_submission(
        self,
        path: str | Path | None = None,
        ids: Sequence[Any] | None = None,
        columns: Sequence[str] | None = None,
        *,
        overwrite: bool = False,
    ) -> Path:
        """Write the last `train_with_cv`'s ensemble as CSV: a header ``id,<columns>``, then one row per test
        sample in the test data's order. Returns the path.

        Args:
            path: default ``submission.csv`` in the cross-validation's folder.
            ids: one id per test sample (default 0, 1, ...).
            columns: the names of a row's values (default ``prediction`` for one value per sample,
                ``prediction_0``, ``prediction_1``, ... for several).
            overwrite: replace a file already at ``path`` (refused otherwise).
        """
        ensemble = self.cv_result.ensemble if self.cv_result is not None else None
        if ensemble is None:
            raise RuntimeError(
                "create_submission: no ensemble to write; call train_with_cv first, with test data "
                "(create_kaggle_trainer(..., test_dataloader=...) or train_with_cv(..., test_loader=...)) "
                "and kaggle.enable_ensemble set"
            )
        rows = np.asarray(ensemble)
        if rows.ndim > 2:
            raise ValueError(
                f"create_submission: the ensemble has shape {rows.shape}; a CSV row holds one sample's "
                "values (predict_step should return [batch] or [batch, values])"
            )
        rows = rows.reshape(len(rows), -1)
        if ids is None:
            ids = range(len(rows))
        elif len(ids) != len(rows):
            raise ValueError(f"create_submission: {len(ids)} ids for {len(rows)} test samples")
        width = rows.shape[1]
        if columns is None:
            columns = ["prediction"] if width == 1 else [f"prediction_{j}" for j in range(width)]
        elif len(columns) != width:
            raise ValueError(f"create_submission: {len(columns)} column names for {width} values per sample")
        path = Path(path) if path is not None else self.cv_result.run_dir / "submission.csv"
        if path.exists() and not overwrite:
            raise FileExistsError(f"create_submission: {path} exists; pass another path, or overwrite=True")
        if _main():
            # The whole file is made first, then put in place at once: a failure (an id that cannot be
            # written) leaves no part of a file to refuse the next call. UTF-8 whatever the locale (Kaggle
            # reads UTF-8); an id taken from a file name in an ASCII locale is that name's bytes again.
            text = io.StringIO(newline="")
            writer = csv.writer(text)
            writer.writerow(["id", *columns])
            for sample_id, values in zip(ids, rows):
                writer.writerow([sample_id, *(repr(float(v)) for v in values)])
            data = text.getvalue().encode("utf-8", errors="surrogateescape")
            write_given_path(
                path,
                lambda tmp: tmp.write_bytes(data),
                overwrite,
                writer="create_submission",
                flag="overwrite",
                example="submission.csv",
            )
        collectives.barrier()  # data parallel: the file is there for every rank once this returns
        return path


def create_kaggle_trainer(
    model: TrainModule,
    competition: str,
    test_dataloader: Any = None,
    config: str | Path | Mapping[str, Any] | TrainerConfig | None = "kaggle",
    *,
    callbacks: list[Callback] | None = None,
    **overrides: Any,
) -> KaggleTrainer:
    """A `KaggleTrainer` for ``model``: ``config`` (default the ``kaggle`` preset) with ``competition`` as
    ``kaggle.competition_name`` (the run label) and ``overrides`` (as `create_trainer` takes them).
    ``test_dataloader``: the competition's test set, which `train_with_cv` predicts with every fold's best
    checkpoint (its ``test_loader`` when not given there); ``callbacks``: extra callbacks, as
    `create_trainer`'s."""
    trainer = create_trainer(
        model,
        config,
        callbacks=callbacks,
        trainer_type="kaggle",
        competition_name=competition,
        **overrides,
    )
    trainer.test_dataloader = test_dataloader
    return trainer


__all__ = ["KaggleTrainer", "create_kaggle_trainer"]
