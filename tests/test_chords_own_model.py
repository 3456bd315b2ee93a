"""A chord model of the user's own (a `ChordRecognitionModel` subclass) with the guide's Trainer: heads that
do not fit are refused by name before training, and its checkpoints are refused by ``predict`` naming its
class, and load from Python with ``ChordPredictor.from_checkpoint(path, model=...)``
(`recipes.chords.own_model`)."""

from audiotrain import DataLoader
from audiotrain.models import ChordRecognitionModel
from audiotrain.recipes.chords.example import SyntheticChordClips

import mlx.nn as nn
import numpy as np
import pytest
import soundfile


class TinyConvChords(ChordRecognitionModel):
    """A user's own network: one convolution over time and its own heads, widths given."""

    def __init__(self, chord_types=32, with_bass=True):
        super().__init__()
        bins = self.config.n_bins + self.config.bass_view_bins
        self.conv = nn.Conv1d(bins, 16, kernel_size=3, padding=1)
        self.heads = {"chord_type": nn.Linear(16, chord_types), "root": nn.Linear(16, 12)}
        self.heads["chord"] = nn.Linear(16, 362)
        if with_bass:
            self.heads["bass"] = nn.Linear(16, 12)

    def __call__(self, features, mask=None):
        x = nn.relu(self.conv(features))
        return {name: head(x) for name, head in self.heads.items()}


def clip_loader(clips=8):
    return DataLoader(SyntheticChordClips(clips, seconds=0.5, seed=0), batch_size=8)


def make_trainer(model, run_dir):
    from audiotrain.recipes.chords import Trainer, TrainingConfig

    config = TrainingConfig(num_epochs=1, batch_size=8, progress_bar=False)
    return Trainer(model, clip_loader(), clip_loader(), config, run_dir=run_dir)


def test_a_chord_type_head_of_another_width_is_refused_naming_the_head_and_the_shape(tmp_path):
    # It trained without a word: the loss reads a target past its 25 classes as class 24.
    with pytest.raises(ValueError, match=r"'chord_type' head gave shape \(1, 4, 25\).*expected \(1, 4, 32\)"):
        make_trainer(TinyConvChords(chord_types=25), tmp_path)


def test_a_missing_bass_head_is_refused_when_the_trainer_is_made_not_as_a_keyerror_in_training(tmp_path):
    expected = r"TinyConvChords must return .*'bass' \[batch, frames, 12\].*lacks \['bass'\]"
    with pytest.raises(ValueError, match=expected):
        make_trainer(TinyConvChords(with_bass=False), tmp_path)


class ReadsTheCqtAlone(TinyConvChords):
    """A first own network as README's paragraph describes it: its input layer sized for the 216 CQT bins
    the feature settings name, not the bass view beside them."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(self.config.n_bins, 16, kernel_size=3, padding=1)


def test_an_input_layer_of_another_width_is_refused_naming_the_frames_the_model_is_given(tmp_path):
    # It was MLX's bare "[conv] Expect the input channels in the input and weight array to match but got
    # shapes - input: (1,4,324) and weight: (16,3,216)", which named neither the call nor the 324.
    expected = (
        r"Trainer\(model=...\): .*ReadsTheCqtAlone\(features, mask\) failed on features \[1, 4, 324\]: "
        r"each frame is features.n_bins \(216\) bins, then features.bass_view_bins \(108\) .*\[conv\]"
    )
    with pytest.raises(ValueError, match=expected):
        make_trainer(ReadsTheCqtAlone(), tmp_path)


class HiddenLayerOfAnotherWidth(TinyConvChords):
    """Its first layer reads the 324 values of a frame; its second takes 32 where the first gives 16."""

    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(32, 16)

    def __call__(self, features, mask=None):
        x = self.hidden(nn.relu(self.conv(features)))
        return {name: head(x) for name, head in self.heads.items()}


def test_a_hidden_layer_of_another_width_is_not_blamed_on_the_input_layer(tmp_path):
    # It was told "size its first layer for 324", the width its first layer already had.
    with pytest.raises(ValueError, match=r"failed on features \[1, 4, 324\]") as refused:
        make_trainer(HiddenLayerOfAnotherWidth(), tmp_path)
    assert "size its first layer" not in str(refused.value)
    assert "a layer further in does not fit the one before it" in str(refused.value)


class WithoutMask(TinyConvChords):
    def __call__(self, features):
        return super().__call__(features)


def test_a_call_without_a_mask_parameter_is_refused_before_training_not_at_the_first_song(tmp_path):
    # It trained (the clip Trainer passes no mask), and ChordPredictor's model(frames, mask) failed.
    with pytest.raises(
        TypeError, match=r"WithoutMask is called as model\(features .*give its __call__ a mask=None"
    ):
        make_trainer(WithoutMask(), tmp_path)


def test_weights_loaded_into_another_class_name_the_class_they_are_of(tmp_path):
    from audiotrain.recipes.chords import ChordPredictor
    from audiotrain.train.checkpoint import CheckpointError

    make_trainer(TinyConvChords(), tmp_path).train()
    with pytest.raises(CheckpointError, match=r"weights are of .*TinyConvChords; model= is the recipe's"):
        ChordPredictor.from_checkpoint(tmp_path / "checkpoints" / "best", model=ChordRecognitionModel())


def test_predict_refuses_its_checkpoint_by_class_and_python_loads_it_into_the_users_model(tmp_path, capsys):
    from audiotrain.recipes import chords
    from audiotrain.recipes.chords import ChordPredictor

    make_trainer(TinyConvChords(), tmp_path).train()
    best = tmp_path / "checkpoints" / "best"
    song = tmp_path / "song.wav"
    t = np.arange(22050 * 3) / 22050
    soundfile.write(song, (0.1 * np.sin(2 * np.pi * 261.6 * t)).astype(np.float32), 22050)

    assert chords.main(["predict", "--checkpoint", str(best), "--tta", "0", str(song)]) == 2
    error = capsys.readouterr().err
    assert f"{TinyConvChords.__module__}.TinyConvChords, a model of your own" in error
    assert "ChordPredictor.from_checkpoint(" in error and "model=TinyConvChords(...)" in error
    assert "write_lab) and run `score PREDICTIONS --data DIR --against" in error  # (its scores, compared)
    assert "does not match" not in error  # (not the weights' names, array by array)

    predictor = ChordPredictor.from_checkpoint(best, model=TinyConvChords(), tta_shifts=(0,))
    segments = predictor.transcribe(song)
    assert segments and segments[-1].end == pytest.approx(3.0, abs=0.1)


def test_a_chordtask_given_the_users_model_records_its_class_for_predict(tmp_path, capsys):
    # README's fine-tuning with the core Trainer, its task's model replaced by the user's own.
    import audiotrain
    from audiotrain.recipes import chords
    from audiotrain.recipes.chords import ChordTask, song_loaders

    make_trainer(ChordRecognitionModel(), tmp_path / "base").train()
    base = tmp_path / "base" / "checkpoints" / "best"
    songs = tmp_path / "songs"
    songs.mkdir()
    t = np.arange(22050 * 4) / 22050
    soundfile.write(songs / "a.wav", (0.1 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32), 22050)
    (songs / "a.lab").write_text("0.0 4.0 A:maj\n")
    train_loader, _ = song_loaders(
        base, songs, batch_size=1, val_fraction=0, test_fraction=0, window_frames=16
    )
    task = ChordTask.load_from_checkpoint(base, num_epochs=1, steps_per_epoch=len(train_loader))
    task.model = TinyConvChords()
    trainer = audiotrain.Trainer(max_epochs=1, default_root_dir=tmp_path / "tuned", enable_progress_bar=False)
    trainer.fit(task, train_loader)

    last = tmp_path / "tuned" / "checkpoints" / "last"
    assert chords.main(["predict", "--checkpoint", str(last), "--tta", "0", str(songs / "a.wav")]) == 2
    assert "TinyConvChords, a model of your own" in capsys.readouterr().err


def test_a_model_given_as_chordtasks_model_config_is_named_as_a_model_not_as_unknown_fields():
    # nn.Module is a dict: its layers were listed as "unknown ChordModelConfig field(s) ['conv', ...]".
    from audiotrain.recipes.chords import ChordTask

    with pytest.raises(
        TypeError, match=r"got a model \(TinyConvChords\); a model of your own goes in task.model"
    ):
        ChordTask(model_config=TinyConvChords())


def test_cross_validation_of_the_users_model_is_refused_not_run_on_the_recipes_model(tmp_path):
    # Each fold built a ChordRecognitionModel of model.config: the scores were the recipe's network's.
    songs = tmp_path / "songs"
    songs.mkdir()
    for name in "abcd":
        t = np.arange(22050 * 4) / 22050
        soundfile.write(
            songs / f"{name}.wav", (0.1 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32), 22050
        )
        (songs / f"{name}.lab").write_text("0.0 4.0 A:maj\n")
    from audiotrain.recipes.chords import Trainer

    config = {"num_epochs": 1, "batch_size": 8, "progress_bar": False, "data": {"window_frames": 16}}
    trainer = Trainer(TinyConvChords(), clip_loader(), config=config, run_dir=tmp_path)
    with pytest.raises(TypeError, match=r"cannot build .*TinyConvChords, a model of your own"):
        trainer.train_with_cv(folds=2, data_dir=songs, run_dir=tmp_path / "cv", log=lambda *_: None)
    assert not any((tmp_path / "cv").glob("fold*/checkpoints"))
