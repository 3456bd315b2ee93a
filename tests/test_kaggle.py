"""Seed 003's Kaggle runs: `create_kaggle_trainer`, the fold models' averaged test predictions, the CSV."""

import csv
from pathlib import Path

from audiotrain import create_trainer
from audiotrain.data import DataLoader
from audiotrain.trainer_config import PRESETS

import numpy as np
import pytest

from tests.test_seed003_declarative import EchoNet, Points, TinyNet


@pytest.fixture
def quick_kaggle_preset(monkeypatch):
    """The kaggle preset in one quick epoch, so that the seed's call runs as written, in seconds."""
    quick = {"num_epochs": 1, "compile": False, "progress_bar": False, "early_stopping": False}
    monkeypatch.setitem(PRESETS, "kaggle", {**PRESETS["kaggle"], "training": quick})


def test_seed003_kaggle_competition_example(tmp_path, monkeypatch, quick_kaggle_preset):
    monkeypatch.chdir(tmp_path)
    model = TinyNet()
    train_loader = DataLoader(Points(), batch_size=8)
    test_loader = DataLoader(Points(12), batch_size=8)
    # --- seed 003, "Kaggle Competition" --------------------------------------------------------------------
    from audiotrain import create_kaggle_trainer

    # Create Kaggle trainer for Titanic
    trainer = create_kaggle_trainer(model=model, competition="titanic", test_dataloader=test_loader)

    # Train with cross-validation
    cv_results = trainer.train_with_cv(train_loader)

    # Create submission
    submission_path = trainer.create_submission()
    # --- end of seed code -----------------------------------------------------------------------------
    assert cv_results.run_dir.parent == Path("runs") and cv_results.run_dir.name.startswith("titanic-cv-")
    assert len(cv_results.fold_scores) == 5  # kaggle.cv_folds
    # The ensemble is the mean of the fold models' (best checkpoints') predictions of the test data.
    each = [
        np.concatenate(trainer.predict(test_loader, ckpt_path=str(d / "checkpoints" / "best")))
        for d in cv_results.fold_dirs
    ]
    assert cv_results.ensemble.shape == (12, 3)
    np.testing.assert_allclose(cv_results.ensemble, np.mean(each, axis=0), rtol=1e-6)
    assert not np.allclose(each[0], each[1])  # (different models: an average, not a copy)
    with open(submission_path) as f:
        rows = list(csv.reader(f))
    assert submission_path == cv_results.run_dir / "submission.csv"
    assert rows[0] == ["id", "prediction_0", "prediction_1", "prediction_2"] and len(rows) == 13
    np.testing.assert_allclose(np.array(rows[1:], dtype=float)[:, 1:], cv_results.ensemble, rtol=1e-6)

    with pytest.raises(FileExistsError, match="submission.csv exists; pass another path, or overwrite=True"):
        trainer.create_submission()
    path = trainer.create_submission(
        ids=[f"s{i}" for i in range(12)], columns=["a", "b", "c"], overwrite=True
    )
    with open(path) as f:
        assert next(csv.reader(f)) == ["id", "a", "b", "c"] and f.readline().startswith("s0,")


def test_cv_folds_comes_from_the_config_and_the_ensemble_needs_both_the_setting_and_test_data(tmp_path):
    test_loader = DataLoader(Points(12), batch_size=8)
    plain = create_trainer(TinyNet(), "quick_test", cv_folds=3, batch_size=8, run_dir=tmp_path / "a")
    with pytest.raises(ValueError, match="test_loader is given, but kaggle.enable_ensemble is false"):
        plain.train_with_cv(Points(), test_loader=test_loader)
    assert not (tmp_path / "a").exists()  # refused before anything was written
    cv = plain.train_with_cv(Points(), log=lambda s: None)
    assert len(cv.fold_scores) == 3 and cv.ensemble is None

    ensemble = create_trainer(
        TinyNet(), "quick_test", cv_folds=2, enable_ensemble=True, batch_size=8, run_dir=tmp_path / "b"
    )
    with pytest.warns(UserWarning, match="enable_ensemble is set but there is no test data"):
        assert ensemble.train_with_cv(Points(), log=lambda s: None).ensemble is None
    shuffled = DataLoader(Points(12), batch_size=8, shuffle=True)
    with pytest.raises(ValueError, match="test_loader shuffles"):
        ensemble.train_with_cv(Points(), test_loader=shuffled, run_dir=tmp_path / "c")
    cv = ensemble.train_with_cv(Points(), test_loader=Points(12), run_dir=tmp_path / "d", log=lambda s: None)
    assert cv.ensemble.shape == (12, 3)  # a Dataset is batched as the training data is


def test_the_ensemble_of_a_test_dataset_is_in_the_datasets_sample_order(tmp_path):
    """A Dataset given as test data is batched in its order: each fold model's row i, and so the ensemble's,
    is sample i's prediction (EchoNet predicts its input)."""
    test = Points(12)
    trainer = create_trainer(
        EchoNet(), "quick_test", cv_folds=2, enable_ensemble=True, batch_size=4, run_dir=tmp_path / "cv"
    )
    cv = trainer.train_with_cv(Points(), test_loader=test, log=lambda s: None)
    np.testing.assert_allclose(cv.ensemble, test.x)


def test_a_kaggle_trainers_test_data_is_used_where_train_with_cv_is_given_none(tmp_path, quick_kaggle_preset):
    """``test_loader=None`` (a caller passing its own default on) is no test data given: the trainer's."""
    from audiotrain import create_kaggle_trainer

    test = Points(12)
    trainer = create_kaggle_trainer(
        EchoNet(), "titanic", test_dataloader=test, cv_folds=2, batch_size=4, run_dir=tmp_path / "cv"
    )
    cv = trainer.train_with_cv(Points(), test_loader=None, log=lambda s: None)
    np.testing.assert_allclose(cv.ensemble, test.x)


def test_create_submission_before_an_ensemble_says_what_it_needs(tmp_path, quick_kaggle_preset):
    from audiotrain import create_kaggle_trainer

    trainer = create_kaggle_trainer(TinyNet(), "titanic", run_dir=tmp_path / "cv")
    with pytest.raises(RuntimeError, match="no ensemble to write; call train_with_cv first, with test data"):
        trainer.create_submission()


@pytest.fixture
def trainer_with_ensemble(tmp_path, quick_kaggle_preset):
    """A Kaggle trainer as its train_with_cv leaves it, with the given ensemble (no training needed)."""
    from audiotrain import create_kaggle_trainer
    from audiotrain.cross_validation import CVResult

    def make(ensemble):
        trainer = create_kaggle_trainer(TinyNet(), "titanic", run_dir=tmp_path / "cv")
        trainer.cv_result = CVResult(tmp_path, [], ensemble=np.asarray(ensemble))
        return trainer

    return make


def test_a_submission_of_one_value_per_sample_has_a_prediction_column(tmp_path, trainer_with_ensemble):
    path = trainer_with_ensemble([0.25, 0.75]).create_submission()
    with open(path) as f:
        assert list(csv.reader(f)) == [["id", "prediction"], ["0", "0.25"], ["1", "0.75"]]


def test_a_submission_path_in_a_folder_not_made_yet_is_written(tmp_path, trainer_with_ensemble):
    path = trainer_with_ensemble([0.5]).create_submission(tmp_path / "submissions" / "v1.csv")
    assert path.read_bytes() == b"id,prediction\r\n0,0.5\r\n"


def test_create_submission_refuses_ids_columns_or_an_ensemble_that_do_not_fit(
    tmp_path, trainer_with_ensemble
):
    trainer = trainer_with_ensemble([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    with pytest.raises(ValueError, match="create_submission: 1 ids for 2 test samples"):
        trainer.create_submission(ids=["only"])
    with pytest.raises(ValueError, match="create_submission: 3 ids for 2 test samples"):
        trainer.create_submission(ids=["a", "b", "c"])  # (not the first two: which are the test set's?)
    with pytest.raises(ValueError, match="create_submission: 1 column names for 3 values per sample"):
        trainer.create_submission(columns=["a"])
    with pytest.raises(ValueError, match="create_submission: 4 column names for 3 values per sample"):
        trainer.create_submission(columns=["a", "b", "c", "d"])
    with pytest.raises(ValueError, match=r"the ensemble has shape \(2, 2, 2\)"):
        trainer_with_ensemble(np.zeros((2, 2, 2))).create_submission()
    assert not (tmp_path / "submission.csv").exists()  # refused before writing


def test_a_kaggle_cv_warning_names_the_users_line_not_audiotrains(tmp_path, monkeypatch, quick_kaggle_preset):
    """The batch-size warning of `create_kaggle_trainer(...).train_with_cv(loader)` pointed at
    audiotrain/kaggle.py (the subclass's call), where the user's script was the place to look."""
    monkeypatch.chdir(tmp_path)
    from audiotrain import create_kaggle_trainer

    trainer = create_kaggle_trainer(model=TinyNet(), competition="titanic")
    batch_of_8 = "the folds' loaders keep the given DataLoader's batches of 8"
    with pytest.warns(UserWarning, match=batch_of_8) as seen:
        trainer.train_with_cv(DataLoader(Points(), batch_size=8), folds=2)
    batch_warnings = [w for w in seen if "folds' loaders keep" in str(w.message)]
    assert [Path(w.filename).name for w in batch_warnings] == [Path(__file__).name]
