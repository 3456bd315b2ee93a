"""Cross-validation of the chord recipe, grouped by song: `python -m audiotrain.recipes.chords cv`."""

import json

from audiotrain.recipes import chords
from audiotrain.recipes.chords.cv import song_folds

import pytest

TINY_CV_FLAGS = [
    "--data.demo_songs", "4", "--data.demo_test_songs", "1", "--data.demo_seconds", "6",
    "--data.window_frames", "32", "--batch_size", "4", "--num_epochs", "1", "--save_every", "0",
    "--model.d_model", "32", "--model.n_layers", "1", "--model.n_heads", "2", "--model.ff_dim", "64",
    "--progress_bar", "false",
]  # fmt: skip


def test_folds_partition_the_songs_and_never_share_one():
    songs = [f"song{i}" for i in range(7)]
    folds = song_folds(songs, 3, val_fraction=0.2, seed=0, source="test")
    assert sorted(s for f in folds for s in f.test) == songs  # every song scored exactly once
    for fold in folds:
        assert not set(fold.test) & set(fold.train + fold.val) and len(fold.val) >= 1
        assert sorted(fold.train + fold.val + fold.test) == songs
    with pytest.raises(ValueError, match="3 songs cannot make 3 folds"):
        song_folds(songs[:3], 3, 0.2, 0, "test")


def test_cv_command_on_demo_songs(tmp_path, capsys):
    run_dir = tmp_path / "cv"
    argv = ["cv", "--folds", "2", *TINY_CV_FLAGS, "--data.cache_dir", str(tmp_path / "cache")]
    assert chords.main([*argv, "--run_dir", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "2-fold cross-validation over 4 songs" in out and "| majmin |" in out
    for k in (0, 1):
        assert (run_dir / f"fold{k}" / "checkpoints" / "best" / "model.safetensors").is_file()
        assert (run_dir / f"fold{k}" / "history.json").is_file()
    assert len(list((run_dir / "oof").glob("*.lab"))) == 4  # one out-of-fold prediction per song
    scores = json.loads((run_dir / "cv_scores.json").read_text())
    assert len(scores["folds"]) == 2 and set(scores["mean"]) == set(scores["std"])
    assert 0 <= scores["mean"]["root"] <= 1


def test_train_with_cv_from_python_runs_the_folds_of_the_cv_command(tmp_path):
    from audiotrain.models import ChordRecognitionModel
    from audiotrain.models.chord_model import ChordModelConfig
    from audiotrain.recipes.chords import Trainer
    from audiotrain.recipes.chords.config import ChordDataConfig, TrainingConfig

    data = ChordDataConfig(
        demo_songs=4, demo_test_songs=1, demo_seconds=6.0, window_frames=32, cache_dir=str(tmp_path / "cache")
    )
    config = TrainingConfig(batch_size=4, num_epochs=1, save_every=0, progress_bar=False, data=data)
    tiny = ChordModelConfig(d_model=32, n_layers=1, n_heads=2, ff_dim=64)
    trainer = Trainer(model=ChordRecognitionModel(tiny), train_loader=[], config=config, run_dir=tmp_path)
    cv = trainer.train_with_cv(folds=2, run_dir=tmp_path / "cv", log=lambda *a: None)
    assert len(cv.histories) == 2 and all(len(h["train_loss"]) == 1 for h in cv.histories)
    assert set(cv.mean) == set(cv.std) and "| majmin |" in cv.table()
    assert len(list((tmp_path / "cv" / "oof").glob("*.lab"))) == 4  # grouped by song: each scored once
    state = json.loads(
        (tmp_path / "cv" / "fold0" / "checkpoints" / "best" / "trainer_state.json").read_text()
    )
    assert state["run_config"]["model"]["d_model"] == 32  # the folds train this Trainer's architecture
