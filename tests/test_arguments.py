"""Wrong types given to the Python API are refused with a message naming the argument and what it takes,
where pathlib, str.format or numpy answered with an error that names none."""

import audiotrain  # noqa: F401  (loads the BLAS before mlx)
from audiotrain import DataModule, Trainer
from audiotrain.metrics import compute_topk_accuracy
from audiotrain.models.clap import load_pretrained
from audiotrain.train import CSVLogger, ModelCheckpoint

import mlx.core as mx
import pytest
from tasks import TinyClassifier, make_batches


class Batches(DataModule):
    def train_dataloader(self):
        return make_batches(16)


CASES = {
    "Trainer default_root_dir": (
        lambda: Trainer(default_root_dir=123),
        TypeError,
        r"Trainer\(default_root_dir=123\): expected a path \(a str or os.PathLike\), got int",
    ),
    "Trainer callbacks not a list": (
        lambda: Trainer(callbacks=object()),
        TypeError,
        r"Trainer\(callbacks=<object .*>\): expected a Callback, a list of Callbacks or None",
    ),
    "Trainer callbacks a str": (
        lambda: Trainer(callbacks="ModelCheckpoint"),
        TypeError,
        r"Trainer\(callbacks='ModelCheckpoint'\): expected a Callback",
    ),
    "CSVLogger save_dir None": (
        lambda: CSVLogger(None),
        TypeError,
        r"CSVLogger\(save_dir=None\): expected a path",
    ),
    "ModelCheckpoint dirpath": (
        lambda: ModelCheckpoint(dirpath=123),
        TypeError,
        r"ModelCheckpoint\(dirpath=123\): expected a path",
    ),
    "ModelCheckpoint filename unclosed brace": (
        lambda: ModelCheckpoint(filename="{epoch"),
        ValueError,
        r"ModelCheckpoint\(filename='\{epoch'\): not a str.format template "
        r"\(expected '\}' before end of string\)",
    ),
    # These passed the constructor and stopped the fit at its first save, after an epoch, with str.format's
    # own error ("Replacement index 0 out of range", "Unknown conversion specifier z"), naming no argument.
    "ModelCheckpoint filename positional field": (
        lambda: ModelCheckpoint(filename="run-{}"),
        ValueError,
        r"ModelCheckpoint\(filename='run-\{\}'\): the field \{\} is positional; name what it writes",
    ),
    "ModelCheckpoint filename numbered field": (
        lambda: ModelCheckpoint(filename="{0}-{epoch}"),
        ValueError,
        r"ModelCheckpoint\(filename='\{0\}-\{epoch\}'\): the field \{0\} is positional",
    ),
    "ModelCheckpoint filename conversion": (
        lambda: ModelCheckpoint(filename="{epoch!z}"),
        ValueError,
        r"ModelCheckpoint\(filename='\{epoch!z\}'\): the field 'epoch' has the conversion '!z'; expected",
    ),
    "ModelCheckpoint filename epoch spec": (
        lambda: ModelCheckpoint(filename="{epoch:s}-{val_loss:.3f}"),
        ValueError,
        r"ModelCheckpoint\(filename='\{epoch:s\}-\{val_loss:.3f\}'\): the field 'epoch' is an int \(0\), "
        r"which the format spec 's' cannot write",
    ),
    "ModelCheckpoint filename not a str": (
        lambda: ModelCheckpoint(filename=7),
        TypeError,
        r"ModelCheckpoint\(filename=7\): expected a str.format template",
    ),
    "fit datamodule class": (
        lambda: Trainer(max_epochs=1, enable_progress_bar=False).fit(TinyClassifier(), datamodule=Batches),
        TypeError,
        r"Trainer.fit\(datamodule=...\): got the class Batches, not an instance of it: pass Batches\(...\)",
    ),
    "fit datamodule class in the loader's place": (
        lambda: Trainer(max_epochs=1, enable_progress_bar=False).fit(TinyClassifier(), Batches),
        TypeError,
        r"got the class Batches, not an instance of it",
    ),
    "fit datamodule not a DataModule": (
        lambda: Trainer(max_epochs=1, enable_progress_bar=False).fit(
            TinyClassifier(), datamodule=make_batches(16)
        ),
        TypeError,
        r"Trainer.fit\(datamodule=...\): list is not a DataModule \(no setup method\)",
    ),
    "load_pretrained None": (
        lambda: load_pretrained(None),
        TypeError,
        r"load_pretrained\(path_or_hub_id=None\): expected a path",
    ),
    "top-k accuracy of nothing": (
        lambda: compute_topk_accuracy(mx.zeros((0, 5)), mx.zeros((0,), mx.int32)),
        ValueError,
        r"compute_topk_accuracy: targets is empty \(scores \(0, 5\), targets \(0,\)\); expected at least one",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_wrong_argument_is_named_with_what_it_takes(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # (a Trainer's default ./logs would land here)
    call, error, message = CASES[name]
    with pytest.raises(error, match=message):
        call()
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_an_empty_top_k_is_refused_but_all_ignored_targets_still_give_nan():
    all_ignored = compute_topk_accuracy(mx.zeros((2, 5)), mx.array([-1, -1]))
    assert all_ignored != all_ignored  # NaN: no target left, as documented


# ---- repr: the settings a user set, on one line (a notebook shows a cell's last value by it) --------------
def test_trainer_repr_shows_the_settings_given_then_where_it_is(tmp_path):
    from audiotrain.train import EarlyStopping

    early = EarlyStopping(patience=1)
    checkpoint = ModelCheckpoint(monitor="val_loss", save_top_k=2)
    trainer = Trainer(
        max_epochs=2, default_root_dir=tmp_path, callbacks=[early, checkpoint], enable_progress_bar=False
    )
    assert repr(Trainer()) == "Trainer()"
    assert repr(trainer) == (
        f"Trainer(max_epochs=2, default_root_dir={str(tmp_path)!r}, callbacks=[EarlyStopping, ModelCheckpoint], "
        "enable_progress_bar=False)"
    )
    assert repr(early) == "EarlyStopping(monitor='val_loss', mode='min', patience=1)"
    assert repr(checkpoint) == "ModelCheckpoint(monitor='val_loss', save_top_k=2)"

    mx.random.seed(0)
    trainer.fit(TinyClassifier(), make_batches(32), make_batches(16))
    assert repr(trainer).endswith(
        ", enable_progress_bar=False, current_epoch=2, global_step=4, state='finished')"
    )
    best = float(f"{checkpoint.best_model_score:.4g}")
    saved_in = tmp_path / "checkpoints"
    assert repr(checkpoint) == (
        f"ModelCheckpoint(monitor='val_loss', save_top_k=2, dirpath={str(saved_in)!r}, best_model_score={best})"
    )
    assert repr(early) == (
        f"EarlyStopping(monitor='val_loss', mode='min', patience=1, best_score={best}, wait_count=0)"
    )


@pytest.mark.filterwarnings("ignore:create_trainer. TinyClassifier defines configure_optimizers")
def test_configured_trainer_and_chord_predictor_reprs_show_their_settings(tmp_path):
    from audiotrain import create_trainer
    from audiotrain.models.chord_model import ChordModelConfig, ChordRecognitionModel
    from audiotrain.recipes.chords.config import ChordFeatureConfig
    from audiotrain.recipes.chords.predict import ChordPredictor

    configured = create_trainer(TinyClassifier(), "quick_test", run_dir=tmp_path / "run")
    assert repr(configured) == (
        f"ConfiguredTrainer(TinyClassifier, run_dir={str(tmp_path / 'run')!r}, num_epochs="
        f"{configured.config.training.num_epochs}, monitor='val_loss', mode='min')"
    )
    model = ChordRecognitionModel(ChordModelConfig(d_model=32, n_layers=1, n_heads=2, ff_dim=64))
    predictor = ChordPredictor(model, ChordFeatureConfig(), window_frames=16, tta_shifts=(0,))
    assert repr(predictor) == (
        "ChordPredictor(checkpoint=None, window_frames=16, window_hop=12, batch_windows=8, tta_shifts=(0,), "
        "decode='viterbi')"
    )
