"""Reusing a trained chord model from the user's side: `ChordTask.load_from_checkpoint` (the task rebuilt from
the checkpoint's record; strict=False into another architecture), ``export`` (the model alone, to share), a
folder without the optimizer's state, a run folder that links elsewhere, `ChordPredictor.from_config`, and
the ``--resume`` of a run started with ``--init_from``. A tiny untrained model is written as the checkpoint:
what is checked is which settings and weights come along, not how well it transcribes."""

import json
import shutil
import warnings
from dataclasses import replace
from pathlib import Path

from audiotrain.chords.decode import DecodeConfig
from audiotrain.chords.vocabulary import vocabulary_dict
from audiotrain.models.chord_loss import ChordRecognitionLoss
from audiotrain.models.chord_model import ChordModelConfig, ChordRecognitionModel
from audiotrain.recipes.chords import cli as chords
from audiotrain.recipes.chords import song_loaders
from audiotrain.recipes.chords.config import FEATURES_VERSION, ChordFeatureConfig, TrainingConfig
from audiotrain.recipes.chords.export import export_model
from audiotrain.recipes.chords.init_from import check_init_from, load_initial_weights, with_checkpoint_model
from audiotrain.recipes.chords.model_checkpoint import (
    StandInCheckpointWarning,
    loaded_checkpoint_note,
    resolve_model_checkpoint,
)
from audiotrain.recipes.chords.predict import ChordPredictor, SongPosteriors, checkpoint_entries
from audiotrain.recipes.chords.task import CHECKPOINT_KEY, ChordTask
from audiotrain.recipes.chords.train import check_resume_settings
from audiotrain.train import Tuner
from audiotrain.train import checkpoint as ckpt
from audiotrain.train.trainer import Trainer

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
import soundfile as sf

from tests import deadlines
from tests.other_users import closed_to_this_user

MODEL = ChordModelConfig(n_bins=216, d_model=16, n_layers=1, n_heads=2, ff_dim=32, dropout=0.0)
WINDOW_FRAMES = 32  # the run's data.window_frames: not the predictor's default of 96


def _write_checkpoint(folder, record_extra=None, model_config=MODEL, record_without=(), **state_extra):
    """A checkpoint folder as the chord recipe writes it (weights, and the record predict reads); `state_extra`
    adds entries to its trainer state, `record_without` names entries of the record to leave out."""
    mx.random.seed(0)
    model = ChordRecognitionModel(model_config)
    mx.eval(model.parameters())
    record = {
        "model_config": model_config.to_dict(),
        **checkpoint_entries(ChordFeatureConfig(), DecodeConfig(), WINDOW_FRAMES),
        **(record_extra or {}),
    }
    for name in record_without:
        del record[name]
    state = {
        "progress": {
            "epoch": 3,
            "batch_in_epoch": 0,
            "global_step": 12,
            "total_batches": 12,
            "micro_batches": 0,
        },
        "random": {"mlx": [0, 0]},
        "module_state": {CHECKPOINT_KEY: record},
        **state_extra,
    }
    arrays = {f"model.{k}": v for k, v in ckpt.flat(model.parameters()).items()}
    return ckpt.write_checkpoint(folder, arrays, {}, {}, state)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run folder with its best checkpoint."""
    run = tmp_path_factory.mktemp("chord_model") / "run"
    _write_checkpoint(run / "checkpoints" / "best")
    return run


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    """Three seconds of a C major triad."""
    sr, seconds = 22050, 3.0
    t = np.arange(int(sr * seconds)) / sr
    audio = sum(0.2 * np.sin(2 * np.pi * f * t) for f in (261.63, 329.63, 392.0)).astype(np.float32)
    path = tmp_path_factory.mktemp("song") / "song.wav"
    sf.write(path, audio, sr)
    return path


def _batches(n=2, frames=16, input_bins=216 + 108):
    rng = np.random.default_rng(0)
    labels = mx.array(rng.integers(0, 12, (2, frames)).astype(np.int32))
    return [
        {
            "features": mx.array(rng.standard_normal((2, frames, input_bins)).astype(np.float32)),
            "chord_type": mx.full((2, frames), 2, mx.int32),
            "root": labels,
            "bass": labels,
        }
        for _ in range(n)
    ]


def _weights(task_or_model) -> dict:
    return {k: np.array(v) for k, v in ckpt.flat(task_or_model.parameters()).items()}


def test_load_from_checkpoint_rebuilds_the_task_from_the_checkpoints_own_record(run):
    """Lightning's `Model.load_from_checkpoint(path)`: the recipe's checkpoints hold no hyperparameters, but
    they hold the model config and what predict reads; the task is built from those (it used to ask for
    model_config and to tell the user to call save_hyperparameters in the library's own class)."""
    best = run / "checkpoints" / "best"
    task = ChordTask.load_from_checkpoint(best)
    assert task.model.config == MODEL
    assert set(task.extra_state) == {"features", "features_version", "vocabulary", "decode", "window_frames"}
    assert task.extra_state["window_frames"] == WINDOW_FRAMES
    stored = ckpt.read_arrays(best / ckpt.MODEL_FILE)
    assert all(np.array_equal(np.array(stored[k]), v) for k, v in _weights(task).items())
    # A run folder loads its best checkpoint, as predict does; the model config may be given as a dict
    # (as config.json holds it), and a bad one is named as the keyword it is.
    assert ChordTask.load_from_checkpoint(run, model_config=MODEL.to_dict()).model.config == MODEL
    with pytest.raises(ValueError, match=r"load_from_checkpoint\(model_config=\.\.\.\): unknown .*'width'"):
        ChordTask.load_from_checkpoint(run, model_config={**MODEL.to_dict(), "width": 3})
    # The caller's extra_state wins over the stored record, as every other keyword does.
    chosen = {"window_frames": WINDOW_FRAMES // 2}
    assert ChordTask.load_from_checkpoint(best, extra_state=chosen).extra_state == chosen


def test_a_task_fine_tuned_from_python_writes_checkpoints_that_predict_and_init_from_load(run, tmp_path):
    """A model fine-tuned with the core Trainer after load_from_checkpoint (new optimizer settings given as
    keywords) keeps the features, vocabulary, decoding and window length in every checkpoint it writes."""
    best = run / "checkpoints" / "best"
    task = ChordTask.load_from_checkpoint(best, model_config=MODEL, learning_rate=1e-3, scheduler=None)
    trainer = Trainer(max_epochs=1, default_root_dir=tmp_path, enable_progress_bar=False)
    trainer.fit(task, _batches())
    last = trainer.checkpoint_callback.last_model_path
    predictor = ChordPredictor.from_checkpoint(last)
    assert predictor.window_frames == WINDOW_FRAMES and predictor.features == ChordFeatureConfig()
    config = with_checkpoint_model(TrainingConfig(), last)  # --init_from
    assert config.model == MODEL
    check_init_from(config, last, tmp_path / "new_run")


class _DistilledTask(ChordTask):
    """A student distilled from a frozen teacher, as a user writes it: the teacher's network is a submodule
    of the task beside the student's `model`, so each checkpoint holds its weights too (``teacher.``)."""

    def __init__(self, teacher: ChordTask, **kwargs):
        super().__init__(**kwargs)
        teacher.freeze()
        self.teacher = teacher.model

    def compute_loss(self, batch):
        loss, metrics = super().compute_loss(batch)
        student = self.model(batch["features"])["chord"]
        teacher = mx.stop_gradient(self.teacher(batch["features"])["chord"])
        soft = mx.mean(mx.sum(mx.softmax(teacher, axis=-1) * -nn.log_softmax(student, axis=-1), axis=-1))
        return 0.5 * loss + 0.5 * soft, metrics


def test_a_distilled_students_checkpoints_load_the_student_alone_for_predict_export_and_init_from(
    run, tmp_path
):
    """The student's checkpoints hold the frozen teacher's weights beside its own: predict, evaluate, export
    and --init_from refused them ("does not match this ChordRecognitionModel: 52 arrays in the checkpoint,
    26 expected; 26 unexpected (e.g. teacher.bass_front.bias, ...)"). They load the student's network."""
    teacher = ChordTask.load_from_checkpoint(run)
    student_config = replace(MODEL, d_model=8, ff_dim=16)
    task = _DistilledTask(teacher, model_config=student_config, extra_state=teacher.extra_state)
    trainer = Trainer(max_epochs=1, default_root_dir=tmp_path, enable_progress_bar=False, logger=False)
    trainer.fit(task, _batches())
    last = Path(trainer.checkpoint_callback.last_model_path)
    assert any(k.startswith("teacher.") for k in ckpt.read_header(last / ckpt.MODEL_FILE))
    student = {k.removeprefix("model."): v for k, v in _weights(task).items() if k.startswith("model.")}
    predictor = ChordPredictor.from_checkpoint(last)  # (predict and evaluate load it so)
    assert predictor.model.config == student_config
    assert all(np.array_equal(v, student[k]) for k, v in _weights(predictor.model).items())
    exported = export_model(last, tmp_path / "export")
    assert set(ckpt.read_header(exported / ckpt.MODEL_FILE)) == {f"model.{k}" for k in student}
    config = with_checkpoint_model(TrainingConfig(), last)  # --init_from
    folder, record = check_init_from(config, last, tmp_path / "new_run")
    fresh = ChordTask(config.model)
    load_initial_weights(fresh, folder, record, lambda line: None)
    assert all(np.array_equal(v, student[k]) for k, v in _weights(fresh.model).items())


def test_a_student_task_whose_model_reads_other_inputs_than_its_features_make_is_refused_when_made(run):
    """A student given the teacher's features (extra_state) and a model_config of a few sizes: the dict is
    read as a first-version record (no bass view), and the first batch failed with "expects features [batch,
    frames, 216], got shape (4, 32, 324)", naming no setting. It is refused when the task is made."""
    teacher = ChordTask.load_from_checkpoint(run)
    with pytest.raises(ValueError, match=r"model_config\.bass_view_bins is 0, the features' 108\. .*record"):
        ChordTask({"d_model": 8, "n_heads": 2, "ff_dim": 16}, extra_state=teacher.extra_state)
    sizes = {**teacher.model.config.to_dict(), "d_model": 8, "ff_dim": 16}
    assert ChordTask(sizes, extra_state=teacher.extra_state).model.config.bass_view_bins == 108
    assert ChordTask(replace(MODEL, d_model=8), extra_state=teacher.extra_state).model.config.d_model == 8


def test_lr_find_sets_the_rate_the_fine_tuning_task_trains_at(run, tmp_path):
    """Tuner(trainer).lr_find(task, loader), as on any Lightning module, refused the recipe's own task:
    'found no learning-rate attribute 'lr' or 'learning_rate'', and attr_name='learning_rate' the same, since
    the rate lived only in task.optim_settings. task.learning_rate is that rate: lr_find writes its
    suggestion there and the next fit's schedule peaks at it."""
    task = ChordTask.load_from_checkpoint(run, learning_rate=1e-3, num_epochs=1, steps_per_epoch=4)
    trainer = Trainer(max_epochs=1, default_root_dir=tmp_path, enable_progress_bar=False, logger=False)
    finder = Tuner(trainer).lr_find(task, _batches(4), num_training=20)
    suggested = finder.suggestion()
    assert suggested is not None and task.learning_rate == suggested != 1e-3
    assert task.optim_settings["learning_rate"] == suggested
    assert task.configure_optimizers().optimizer.learning_rate.item() == pytest.approx(suggested, rel=1e-6)
    with pytest.raises(ValueError, match="learning_rate"):
        task.learning_rate = -1.0


def test_a_run_fine_tuned_on_a_song_folder_from_python_as_the_readme_does(run, song, tmp_path):
    """README's fine-tuning from Python, end to end: the loaders of a folder of songs for the run's features
    and windows (`song_loaders`), the task from the run, `Trainer.fit(task, train_loader, val_loader)`. The
    loaders were only built inside the recipe, so the README's sequence stopped at the task."""
    songs = tmp_path / "songs"
    songs.mkdir()
    for name in "abcd":
        shutil.copy(song, songs / f"{name}.wav")
        (songs / f"{name}.lab").write_text("0.0\t3.0\tC:maj\n")
    cache = tmp_path / "cache"  # (not the user's cache)
    train_loader, val_loader = song_loaders(run, songs, batch_size=2, test_fraction=0, cache_dir=cache)
    batch = next(iter(train_loader))
    assert batch["features"].shape == (2, WINDOW_FRAMES, MODEL.n_bins + 108)  # the run's windows and bins
    assert len(val_loader) > 0 and any((cache / "features").rglob("*"))
    task = ChordTask.load_from_checkpoint(
        run, learning_rate=1e-3, num_epochs=1, steps_per_epoch=len(train_loader)
    )
    before = _weights(task)
    trainer = Trainer(max_epochs=1, default_root_dir=tmp_path / "tuned", enable_progress_bar=False)
    trainer.fit(task, train_loader, val_loader)
    assert trainer.global_step == len(train_loader) and "val_loss" in trainer.callback_metrics
    assert any(not np.array_equal(before[k], v) for k, v in _weights(task).items())
    assert (
        ChordPredictor.from_checkpoint(trainer.checkpoint_callback.last_model_path).window_frames
        == WINDOW_FRAMES
    )
    # The loaded task gives the same loaders; without validation songs there is no validation loader.
    again, none = song_loaders(task, songs, batch_size=2, test_fraction=0, val_fraction=0, cache_dir=cache)
    assert none is None and len(again.dataset) > len(train_loader.dataset)
    with pytest.raises(ValueError, match="holds no chord feature settings.*load_from_checkpoint"):
        song_loaders(ChordTask(MODEL), songs)  # (built by hand: which features it reads is unknown)


def test_the_readmes_core_trainer_fine_tuning_uses_the_train_commands_warm_up_and_clipping():
    """README's fine-tuning with the core Trainer, given the learning rate and epochs of a `train --init_from`
    run on the same loaders, reached another loss (12.47 against 12.45 after 5 epochs): ChordTask's default
    is no warm-up and the Trainer's no clipping, where `train` warms up for 1 epoch and clips at 1. The block
    passes `train`'s defaults, so that it trains as the command does."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    start = text.index("# Fine-tune with the core Trainer (audiotrain.Trainer)")
    block = text[start : text.index("```", start)]
    defaults = TrainingConfig()
    assert f"warmup_epochs={defaults.warmup_epochs!r}" in block
    assert f"gradient_clip_val={defaults.gradient_clip!r}" in block


def test_init_from_trains_on_the_runs_windows_as_song_loaders_builds_them(run, tmp_path):
    """README: song_loaders builds the loaders "as `train --data` builds them for the run", with the run's
    data.window_frames (32), but `train --init_from RUN` took its own default (96), and refused 6 s songs
    ("--data.window_frames 96 is longer than every training song"). Both take the run's now; a flag wins."""
    parser = chords._training_parser("chords", "", needs_data=False, init_from=True)

    def window(*flags):
        args = parser.parse_args(["--init_from", str(run), "--run_dir", str(tmp_path / "r"), *flags])
        return chords._config_from_args(args).data.window_frames

    assert window() == WINDOW_FRAMES == TrainingConfig().data.window_frames // 3
    assert window("--data.window_frames", "64") == 64
    songs = tmp_path / "songs"
    songs.mkdir()
    sf.write(
        songs / "a.wav", np.random.default_rng(0).uniform(-0.1, 0.1, 22050 * 4).astype(np.float32), 22050
    )
    (songs / "a.lab").write_text("0.0 4.0 C:maj\n")
    train_loader, _ = song_loaders(
        run, songs, batch_size=1, val_fraction=0, test_fraction=0, cache_dir=tmp_path / "cache"
    )
    assert next(iter(train_loader))["features"].shape[1] == window()


def test_evaluation_loader_gives_held_out_songs_in_order_unaugmented_as_the_recipes_validation(run, tmp_path):
    """`trainer.test` on a folder of held-out songs had only song_loaders(val_fraction=0, test_fraction=0):
    the training loader, shuffled, pitch-shifted and equalised, whose test_loss changed from run to run
    (14.39, then 14.25). evaluation_loader gives every song's windows in order, unshifted, each time."""
    from audiotrain.recipes.chords import evaluation_loader

    songs = tmp_path / "held_out"
    songs.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        sf.write(songs / f"{name}.wav", rng.uniform(-0.1, 0.1, 22050 * 3).astype(np.float32), 22050)
        (songs / f"{name}.lab").write_text("0.0 1.5 C:maj\n1.5 3.0 A:min\n")
    loader = evaluation_loader(run, songs, batch_size=2, cache_dir=tmp_path / "cache")

    def features(loader):
        return np.concatenate([np.array(b["features"]) for b in loader])

    first = features(loader)
    assert first.shape[1] == WINDOW_FRAMES and np.array_equal(first, features(loader))
    assert len(loader.dataset) == first.shape[0] > 2  # every window of both songs, none dropped
    task = ChordTask.load_from_checkpoint(run)
    trainer = Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    losses = [trainer.test(task, loader, verbose=False)[0]["test_loss"] for _ in range(2)]
    assert losses[0] == losses[1]
    with pytest.raises(TypeError, match="takes every song of .*val_fraction does not apply"):
        evaluation_loader(run, songs, val_fraction=0.2)


def test_the_readmes_way_from_a_songs_frames_to_transcribes_labels_gives_them(run, song):
    """A song's whole-song logits from trainer.predict, softmaxed into SongPosteriors without level_db,
    gave "B:min" where transcribe gave "N", and nothing said why (no silence gate, one window, no test-time
    shifts). README names the windows (posteriors_from_features), the shifts and the levels; together they
    give transcribe's labels."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    for named in (
        "posteriors_from_features(frames)",
        "frame_levels_db(predictor.waveform(",
        "tta_shifts=(0,)",
    ):
        assert named in text
    predictor = ChordPredictor.from_checkpoint(run, tta_shifts=(0,))
    frames, seconds = predictor.song_features(song)
    levels = predictor.features.frame_levels_db(predictor.waveform(song), len(frames))
    post = SongPosteriors(
        predictor.posteriors_from_features(frames), predictor.features.frame_rate, seconds, levels
    )
    reference = predictor.posteriors(song)
    assert np.array_equal(post.level_db, reference.level_db)
    assert all(np.allclose(post.probs[k], reference.probs[k], atol=1e-6) for k in reference.probs)
    assert predictor.segments(post) == predictor.transcribe(song)


def test_a_loaded_tasks_loss_is_trains_default_and_the_readme_says_how_to_give_the_runs(run):
    """ChordTask.load_from_checkpoint builds ChordRecognitionLoss() whatever loss.* and label_smoothing the
    run trained with (the checkpoint records none), and nothing said so: a run of --label_smoothing 0 got
    0.1 back. README says which loss it is and how to pass the run's; both claims are checked here."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert "Its loss is `ChordRecognitionLoss()`, whose defaults are `train`'s" in text
    assert "loss=ChordRecognitionLoss(label_smoothing=0.0, bass_weight=1.0)" in text
    defaults = TrainingConfig()
    loss = ChordTask.load_from_checkpoint(run).loss_fn
    assert loss.label_smoothing == defaults.label_smoothing and loss.class_weights is None
    assert (
        loss.weights["bass"] == defaults.loss.bass_weight
        and loss.weights["root"] == defaults.loss.root_weight
    )
    own = ChordRecognitionLoss(label_smoothing=0.0, bass_weight=1.0)
    assert ChordTask.load_from_checkpoint(run, loss=own).loss_fn is own


def test_song_loaders_keywords_are_typed_as_a_config_files_data_settings(run, tmp_path):
    """song_loaders(pitch_shift="false") trained with pitch shift (all 12 keys), as did pitch_shift=3, where a
    --config file's `pitch_shift: "false"` is refused; a misspelt keyword now gets a "did you mean"."""
    songs = tmp_path / "songs"
    songs.mkdir()
    for value in ("false", 3):
        with pytest.raises(
            ValueError, match=f"song_loaders: field 'pitch_shift' must be bool, got {value!r}"
        ):
            song_loaders(run, songs, pitch_shift=value, cache_dir=tmp_path / "cache")
    with pytest.raises(ValueError, match="unknown field 'pitch_shifts'; did you mean 'pitch_shift'"):
        song_loaders(run, songs, pitch_shifts=(-2, 2), cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_strict_false_loads_another_architecture_and_warns_with_the_weights_left_out(run):
    """One more block, or no joint chord head: the weights whose names match load and a warning lists the
    rest, as in Lightning (the task then refused the load it had just warned about, as a resume)."""
    best = run / "checkpoints" / "best"
    deeper = replace(MODEL, n_layers=2)
    with pytest.warns(UserWarning, match=r"loaded \d+ of .*not in the checkpoint.*model\.blocks\.1\."):
        task = ChordTask.load_from_checkpoint(best, model_config=deeper, strict=False)
    assert task.model.config == deeper
    stored = ckpt.read_arrays(best / ckpt.MODEL_FILE)
    block0 = {k: v for k, v in _weights(task).items() if k.startswith("model.blocks.0.")}
    assert block0 and all(np.array_equal(np.array(stored[k]), v) for k, v in block0.items())
    with pytest.warns(UserWarning, match=r"in the checkpoint but not in the model, ignored: .*chord_head"):
        ChordTask.load_from_checkpoint(best, model_config=replace(MODEL, chord_head=False), strict=False)
    # Strict (the default) names the weights that do not fit; another dropout changes no weight: it loads.
    with pytest.raises(ckpt.CheckpointError, match=r"missing .*model\.blocks\.1\."):
        ChordTask.load_from_checkpoint(best, model_config=deeper)
    assert (
        ChordTask.load_from_checkpoint(best, model_config=replace(MODEL, dropout=0.3)).model.config.dropout
        == 0.3
    )
    # A resume into a task built elsewhere still compares the settings, each named.
    with pytest.raises(ValueError, match=r"model\.n_layers \(1 there, 2 here\)"):
        ChordTask(deeper).on_load_checkpoint({CHECKPOINT_KEY: {"model_config": MODEL.to_dict()}})


def test_load_from_checkpoint_of_another_modules_checkpoint_says_it_is_not_the_chord_recipes(tmp_path):
    """A checkpoint of another module (its own hyperparameters) or a CLAP run's (none) was refused as a
    model_config missing from the hyperparameters, telling the user to pass it or to call
    save_hyperparameters() in ChordTask.__init__: the library's class, not theirs. It is named as
    ChordPredictor.from_checkpoint and --init_from name it."""
    other = _write_checkpoint(tmp_path / "other", module_state={}, hyper_parameters={"hidden": 8})
    clap_run = _write_checkpoint(tmp_path / "clap", module_state={})
    for folder in (other, clap_run):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # (nor a warning about hyperparameters no __init__ takes)
            with pytest.raises(ckpt.CheckpointError) as refused:
                ChordTask.load_from_checkpoint(folder)
        assert str(refused.value) == (
            f"{folder} holds no chord model settings (module_state.{CHECKPOINT_KEY} in trainer_state.json); "
            "was it written by the chord recipe?"
        )


def test_a_clap_checkpoint_or_model_folder_given_to_the_chord_recipe_is_named_as_clap(tmp_path, capsys):
    """A CLAP run's checkpoint was "no chord model settings ...; was it written by the chord recipe?", and a
    Hugging Face CLAP folder (a CLAP run's hf_model/) "missing trainer_state.json ...; to share a model,
    python -m audiotrain.recipes.chords export ... writes a folder": neither said it is a CLAP model."""
    clap_record = {"source": None, "front_end": {"sampling_rate": 48000}}
    clap_checkpoint = _write_checkpoint(
        tmp_path / "clap" / "checkpoints" / "last", module_state={}, model=clap_record
    )
    hf_model = tmp_path / "clap" / "hf_model"
    hf_model.mkdir()
    (hf_model / "config.json").write_text(json.dumps({"model_type": "clap"}))
    mx.save_safetensors(str(hf_model / "model.safetensors"), {"w": mx.zeros((2,))})
    for folder, what in (
        (clap_checkpoint, "a CLAP recipe checkpoint"),
        (hf_model, "a Hugging Face CLAP model"),
    ):
        for load in (ChordPredictor.from_checkpoint, ChordTask.load_from_checkpoint, song_loaders):
            with pytest.raises(ckpt.CheckpointError) as refused:
                load(folder, *([tmp_path] if load is song_loaders else []))
            assert f"{folder} is {what}, not a chord model" in str(refused.value), str(refused.value)
            assert "chords export" not in str(refused.value)
        argv = [
            "train",
            "--data",
            str(tmp_path),
            "--init_from",
            str(folder),
            "--run_dir",
            str(tmp_path / "r"),
        ]
        assert chords.main(argv) == 2
        assert f"{folder} is {what}, not a chord model" in capsys.readouterr().err


def test_strict_false_with_a_resized_head_says_what_it_leaves_out_and_how_to_start_the_head_afresh(run):
    """A changed head size with strict=False (README: "the matching weights load") was refused with
    strict=True's words alone ("does not match this ChordTask model: ... 4 mis-shaped"): nothing said that
    strict=False leaves out only weights one side lacks, nor how to keep the trunk's weights under a new
    head."""
    wider = replace(MODEL, num_chord_types=40)
    with pytest.raises(ckpt.CheckpointError) as refused:
        ChordTask.load_from_checkpoint(run, model_config=wider, strict=False)
    message = str(refused.value)
    assert "strict=False leaves out only the weights that one side lacks" in message, message
    assert "model.chord_type_head.bias: checkpoint (32,) vs model (40,)" in message
    assert "load_weights" in message and "shape" in message
    # The way it names works: the trunk's weights under a new head.
    old = ChordTask.load_from_checkpoint(run)
    new = ChordTask(wider)
    shapes = {k: v.shape for k, v in ckpt.flat(new.parameters()).items()}
    new.load_weights(
        [(k, v) for k, v in ckpt.flat(old.parameters()).items() if v.shape == shapes[k]], strict=False
    )
    assert np.array_equal(np.array(new.model.front.weight), np.array(old.model.front.weight))
    assert new.model.chord_type_head.weight.shape == (40, MODEL.d_model)


def test_a_model_of_another_chord_type_count_is_refused_where_it_loads_for_transcribing(tmp_path, capsys):
    """A fine-tune with a resized chord-type head (num_chord_types 40, the trunk's weights kept) saved,
    reloaded and loaded into ChordPredictor, and failed only in the decoder on the first song ("type_probs
    must be [frames, 32], got (83, 40)"), in predict and evaluate too, naming neither the setting nor the
    checkpoint."""
    folder = _write_checkpoint(
        tmp_path / "wider" / "checkpoints" / "best", model_config=replace(MODEL, num_chord_types=40)
    )
    expected = "model.num_chord_types is 40, but the decoding reads the 32 chord types of the vocabulary"
    with pytest.raises(ValueError, match=expected):
        ChordPredictor.from_checkpoint(folder)
    song = tmp_path / "song.wav"
    sf.write(song, np.zeros(22050, dtype=np.float32), 22050)
    assert (
        chords.main(["predict", "--checkpoint", str(folder), str(song), "-o", str(tmp_path / "s.lab")]) == 2
    )
    err = capsys.readouterr().err
    assert expected in err and str(folder) in err and not (tmp_path / "s.lab").exists()


def test_a_bad_keyword_to_load_from_checkpoint_is_shown_among_the_arguments(run):
    """ChordTask.load_from_checkpoint(RUN, learning_rate=-1) listed the arguments it built the task with,
    cut at 300 characters: the checkpoint's feature and vocabulary record filled them, and learning_rate=-1,
    the one to correct, was cut off."""
    with pytest.raises(ValueError) as refused:
        ChordTask.load_from_checkpoint(run, learning_rate=-1)
    message = str(refused.value)
    assert "learning_rate=-1," in message and "got -1" in message, message


def test_a_fine_tune_resumes_with_its_checkpoints_settings_whatever_its_init_from_folder_holds(tmp_path):
    """Its model and features came from --init_from, not from flags, and its checkpoint holds them: its
    resume takes them from there, with or without that --init_from, also where the folder holds another
    model since or is gone. A refusal said to add the --init_from the command already had (its folder then
    held another model), and one without it said so too, while the resume of another --init_from said to
    leave it out; only repeating every --model.* flag went on (and dropped the run's init_from record)."""
    source = _write_checkpoint(tmp_path / "source" / "checkpoints" / "best")
    started = {"checkpoint": str(source.resolve()), "epoch": 3, "global_step": 12}
    last = _write_checkpoint(tmp_path / "ft" / "checkpoints" / "last", {"init_from": started})
    parser = chords._training_parser("chords", "", needs_data=False, init_from=True)

    def resumed(*flags):
        """The settings `--resume last` with `flags` resolves to, after the checks of the resume."""
        args = parser.parse_args([*flags, "--resume", str(last)])
        config = chords._config_from_args(args)
        check_resume_settings(config, last, init_from=args.init_from)
        return config

    source_run = tmp_path / "source"
    assert resumed().model == MODEL  # (TrainingConfig's own d_model is 128)
    assert resumed("--init_from", str(source_run)).model == MODEL
    assert resumed("--init_from", str(source)).model == MODEL
    # The --init_from folder overwritten by a run of another model size: not read.
    _write_checkpoint(source, model_config=replace(MODEL, d_model=48))
    assert resumed("--init_from", str(source_run)).model == MODEL
    shutil.rmtree(source_run)  # and gone
    assert resumed("--init_from", str(source_run)).model == MODEL
    assert resumed().model == MODEL
    # A flag that changes the model is refused, with a remedy that works.
    with pytest.raises(ValueError) as refused:
        resumed("--model.d_model", "64")
    message = str(refused.value)
    assert "model.d_model (16 there, 64 here)" in message
    assert f"this run started with --init_from {source.resolve()}" in message, message
    assert "drop the --preset, --config entries or flags that change them" in message, message
    assert "Python" not in message and "add that --init_from" not in message
    # Another start than the run's is refused, saying to leave it out, which resumes (above).
    other = _write_checkpoint(tmp_path / "other" / "checkpoints" / "best")
    with pytest.raises(ValueError) as refused:
        resumed("--init_from", str(other))
    message = str(refused.value)
    assert f"the resumed run started from the weights of {source.resolve()}" in message, message
    assert "Leave --init_from out to resume it" in message
    # A run from random weights resumed with --init_from: the same refusal, and its folder is not read.
    plain = _write_checkpoint(tmp_path / "plain" / "checkpoints" / "last")
    args = parser.parse_args(["--init_from", str(tmp_path / "gone"), "--resume", str(plain)])
    with pytest.raises(ValueError, match=r"started from random weights.*Leave --init_from out to resume it"):
        check_resume_settings(chords._config_from_args(args), plain, init_from=args.init_from)


def test_predict_and_init_from_need_only_the_weights_and_the_record(run, tmp_path, song):
    """They read model.safetensors and trainer_state.json, and nothing of the optimizer: a folder of those
    two loads (it was refused for lacking optimizer.safetensors); weights alone name the way to share."""
    share = tmp_path / "share"
    share.mkdir()
    for name in (ckpt.MODEL_FILE, ckpt.STATE_FILE):
        shutil.copy(run / "checkpoints" / "best" / name, share / name)
    expected = ChordPredictor.from_checkpoint(run).transcribe(song)
    assert ChordPredictor.from_checkpoint(share).transcribe(song) == expected
    check_init_from(with_checkpoint_model(TrainingConfig(), share), share, tmp_path / "new_run")
    assert ChordTask.load_from_checkpoint(share).model.config == MODEL
    (share / ckpt.STATE_FILE).unlink()
    with pytest.raises(
        ckpt.CheckpointError, match=r"missing trainer_state\.json.*chords export --checkpoint"
    ):
        ChordPredictor.from_checkpoint(share)


def test_export_writes_the_model_alone_for_predict_evaluate_and_init_from(run, tmp_path, song, capsys):
    out = tmp_path / "shared_model"
    assert chords.main(["export", "--checkpoint", str(run), "--out", str(out)]) == 0
    assert f"to {out}" in capsys.readouterr().out
    assert ckpt.read_arrays(out / ckpt.OPTIMIZER_FILE) == {}  # no AdamW moments
    record = ckpt.read_state(out)["module_state"][CHECKPOINT_KEY]
    assert set(record) == {
        "model_config",
        "features",
        "features_version",
        "vocabulary",
        "decode",
        "window_frames",
    }
    expected = ChordPredictor.from_checkpoint(run).transcribe(song)
    assert ChordPredictor.from_checkpoint(out).transcribe(song) == expected
    config = with_checkpoint_model(TrainingConfig(), out)
    assert check_init_from(config, out, tmp_path / "new_run")[1]["epoch"] == 3
    # --resume has nothing to go on with, and says so before anything is written.
    with pytest.raises(ckpt.CheckpointError, match=r"weights only.*--init_from"):
        check_resume_settings(config, out)
    # An existing --out is replaced only with --overwrite, and only when it is an earlier export.
    assert chords.main(["export", "--checkpoint", str(run), "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert chords.main(["export", "--checkpoint", str(run), "--out", str(out), "--overwrite"]) == 0
    # ... whole: a note (or an export put inside it) would go with it, so it is refused and left as it is.
    (out / "README_mine.txt").write_text("my notes")
    capsys.readouterr()
    assert chords.main(["export", "--checkpoint", str(run), "--out", str(out), "--overwrite"]) == 2
    assert f"--out {out} is an earlier export, but it also holds README_mine.txt" in capsys.readouterr().err
    assert (out / "README_mine.txt").read_text() == "my notes"
    (out / "README_mine.txt").unlink()
    training = tmp_path / "training_checkpoint"
    shutil.copytree(run / "checkpoints" / "best", training)
    assert chords.main(["export", "--checkpoint", str(run), "--out", str(training), "--overwrite"]) == 2
    assert "not an earlier export" in capsys.readouterr().err
    assert ckpt.read_state(training).get("weights_only") is None  # untouched
    assert chords.main(["export", "--checkpoint", str(run), "--out", str(run / "checkpoints" / "small")]) == 2
    assert "checkpoints folder" in capsys.readouterr().err


def test_weights_that_do_not_fit_the_recorded_model_are_refused_by_export_and_init_from(tmp_path):
    """Refused before anything is written or any song read, naming the weights file: an export of them was a
    folder predict cannot load, and a fine-tune failed only once its data was read."""
    from audiotrain.recipes.chords.export import export_model

    folder = _write_checkpoint(
        tmp_path / "mismatched", {"model_config": MODEL.to_dict()}, model_config=replace(MODEL, d_model=8)
    )
    out = tmp_path / "out"
    with pytest.raises(ckpt.CheckpointError, match=r"mismatched/model\.safetensors"):
        export_model(folder, out)
    assert not out.exists()
    with pytest.raises(ckpt.CheckpointError, match=r"mismatched/model\.safetensors"):
        check_init_from(with_checkpoint_model(TrainingConfig(), folder), folder, None)


def test_a_record_without_a_part_export_or_init_from_needs_is_refused_naming_the_folder_and_part(tmp_path):
    """A chord record without its vocabulary was exported (predict of the export then read its classes as
    this version's); one without its feature settings gave a KeyError in place of the checkpoint's name."""
    from audiotrain.recipes.chords.export import export_model

    no_vocabulary = _write_checkpoint(tmp_path / "no_vocabulary", record_without=("vocabulary",))
    with pytest.raises(ckpt.CheckpointError) as refused:
        export_model(no_vocabulary, tmp_path / "out")
    assert f"{no_vocabulary} holds no chord vocabulary" in str(refused.value)
    assert not (tmp_path / "out").exists()
    no_features = _write_checkpoint(tmp_path / "no_features", record_without=("features",))
    with pytest.raises(ckpt.CheckpointError, match=r"no_features holds no chord model and feature settings"):
        with_checkpoint_model(TrainingConfig(), no_features)


def test_export_writes_nothing_into_a_checkpoint_and_overwrites_only_an_export(run, tmp_path, capsys):
    """An --out inside a checkpoint of its own (not in a run's checkpoints folder) would add a folder to that
    checkpoint; --overwrite would replace a weights-only checkpoint the Trainer wrote, or one whose state
    cannot be read; a link at --out that leads nowhere would be written through."""
    from audiotrain.recipes.chords.export import export_model

    mine = _write_checkpoint(tmp_path / "mine")
    before = sorted(p.name for p in mine.iterdir())
    with pytest.raises(ValueError, match=r"lies inside the checkpoint"):
        export_model(mine, mine / "export")
    assert sorted(p.name for p in mine.iterdir()) == before
    weights_only = _write_checkpoint(tmp_path / "weights_only", weights_only=True)
    unreadable = _write_checkpoint(tmp_path / "unreadable")
    (unreadable / ckpt.STATE_FILE).write_text("{not json")
    for training in (weights_only, unreadable):
        state = (training / ckpt.STATE_FILE).read_text()
        assert chords.main(["export", "--checkpoint", str(run), "--out", str(training), "--overwrite"]) == 2
        assert "not an earlier export" in capsys.readouterr().err
        assert (training / ckpt.STATE_FILE).read_text() == state  # untouched
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    assert chords.main(["export", "--checkpoint", str(run), "--out", str(dangling)]) == 2
    assert f"--out {dangling} exists" in capsys.readouterr().err
    assert dangling.is_symlink() and not (tmp_path / "nowhere").exists()


def test_an_export_keeps_the_versions_that_trained_it_and_refuses_an_out_under_a_file(tmp_path, capsys):
    """The versions the run recorded (read by the messages on older checkpoints) go with its model; an --out
    that cannot be made is refused before any work, naming the file in its way."""
    versions = {"audiotrain": "0.9.0", "mlx": "0.20.0"}
    trained = _write_checkpoint(tmp_path / "trained", versions=versions)
    out = tmp_path / "out"
    assert chords.main(["export", "--checkpoint", str(trained), "--out", str(out)]) == 0
    assert ckpt.read_state(out)["versions"] == versions
    in_the_way = tmp_path / "a_file"
    in_the_way.write_text("")
    capsys.readouterr()
    assert chords.main(["export", "--checkpoint", str(trained), "--out", str(in_the_way / "model")]) == 2
    assert f"--out {in_the_way / 'model'}: {in_the_way} is a file, not a folder" in capsys.readouterr().err


def test_init_from_lets_dropout_differ_and_records_where_it_started_as_an_absolute_path(
    run, tmp_path, monkeypatch
):
    """Dropout changes how the network trains, not what its weights compute: it may differ (the refusal says
    so). A relative --init_from was recorded as given, so a resume from another folder looked elsewhere."""
    config = with_checkpoint_model(TrainingConfig(), run)
    config = replace(config, model=replace(config.model, dropout=0.3))
    best = run / "checkpoints" / "best"
    assert check_init_from(config, run, None)[0] == best
    monkeypatch.chdir(run.parent)
    assert check_init_from(config, run.name, None)[1]["checkpoint"] == str(best.resolve())


def test_a_run_folder_whose_checkpoint_links_elsewhere_is_refused(run, tmp_path):
    """Loading reads nothing outside the folder it was given: a run folder's checkpoints/best linked to
    another run's is refused naming where it leads, as a linked file in a checkpoint is."""
    linked = tmp_path / "linked_run"
    (linked / "checkpoints").mkdir(parents=True)
    (linked / "checkpoints" / "best").symlink_to(run / "checkpoints" / "best")
    for load in (
        ChordPredictor.from_checkpoint,
        ChordTask.load_from_checkpoint,
        lambda path: with_checkpoint_model(TrainingConfig(), path),
    ):
        with pytest.raises(ckpt.CheckpointError, match=r"leads outside the run folder .*linked_run"):
            load(linked)
    # A link to the run beside it (in the same folder of runs) leads outside it too.
    sibling = _write_checkpoint(tmp_path / "sibling_run" / "checkpoints" / "best")
    (linked / "checkpoints" / "best").unlink()
    (linked / "checkpoints" / "best").symlink_to(sibling)
    with pytest.raises(ckpt.CheckpointError, match=r"leads outside the run folder .*linked_run"):
        resolve_model_checkpoint(linked)


def test_a_predictor_from_a_runs_config_and_weights_uses_the_runs_window_length(run, tmp_path, song):
    """Rebuilt from config.json and the network's own save_weights, it labels as predict does: the window
    length is the run's data.window_frames (the constructor's default of 96 gave other boundaries)."""
    config = TrainingConfig(model=MODEL)
    config = replace(config, data=replace(config.data, window_frames=WINDOW_FRAMES))
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps({"config": config.to_dict(), "versions": {}}))
    weights = tmp_path / "chord_model.safetensors"
    ChordPredictor.from_checkpoint(run).model.save_weights(str(weights))
    predictor = ChordPredictor.from_config(config_file, weights)
    assert predictor.window_frames == WINDOW_FRAMES
    assert predictor.transcribe(song) == ChordPredictor.from_checkpoint(run).transcribe(song)
    assert (
        ChordPredictor.from_config(config, run / "checkpoints" / "best" / ckpt.MODEL_FILE).window_frames == 32
    )


def test_a_predictor_from_a_missing_weights_file_names_the_file_not_an_empty_checkpoint(tmp_path):
    config = TrainingConfig(model=MODEL)
    missing = tmp_path / "does_not_exist.safetensors"
    with pytest.raises(FileNotFoundError, match=r"weights file .*does_not_exist\.safetensors does not exist"):
        ChordPredictor.from_config(config, missing)
    with pytest.raises(IsADirectoryError, match=r"is a folder: .*from_checkpoint"):
        ChordPredictor.from_config(config, tmp_path)


def test_a_checkpoint_of_the_same_chord_types_in_another_order_is_refused_naming_the_file(tmp_path):
    """Its model would read every class as another chord (major as minor); the error says where and which."""
    vocabulary = vocabulary_dict()
    types = vocabulary["chord_types"]
    types[2], types[3] = types[3], types[2]
    folder = _write_checkpoint(tmp_path / "ckpt", record_extra={"vocabulary": vocabulary})
    with pytest.raises(ckpt.CheckpointError) as info:
        ChordPredictor.from_checkpoint(folder)
    message = str(info.value)
    assert str(folder / "trainer_state.json") in message and ".vocabulary: " in message
    assert "class 2 is 'min' in the checkpoint, 'maj' in this version" in message


def test_a_checkpoint_whose_roots_count_from_another_note_is_refused_and_another_spelling_loads(tmp_path):
    """Root class i is pitch class i: a record counting its roots from A would read every root a minor third
    off, so it is refused naming the class; C# for Db names the same classes and loads."""
    from_a = vocabulary_dict()
    from_a["pitch_classes"] = from_a["pitch_classes"][9:] + from_a["pitch_classes"][:9]
    folder = _write_checkpoint(tmp_path / "from_a", record_extra={"vocabulary": from_a})
    with pytest.raises(ckpt.CheckpointError) as info:
        ChordPredictor.from_checkpoint(folder)
    message = str(info.value)
    assert str(folder / "trainer_state.json") in message and ".vocabulary: " in message
    assert "root class 0 is 'A' in the checkpoint, 'C' in this version" in message
    sharps = vocabulary_dict()
    sharps["pitch_classes"] = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
    ChordPredictor.from_checkpoint(
        _write_checkpoint(tmp_path / "sharps", record_extra={"vocabulary": sharps})
    )


def test_an_export_of_features_a_newer_audiotrain_computes_is_refused_naming_the_version(
    tmp_path, song, capsys
):
    """The same feature settings computed by newer feature code are other features: the export records the
    version it computed, and an older audiotrain refuses it (it transcribed with its own features)."""
    folder = _write_checkpoint(tmp_path / "ckpt")
    assert chords.main(["export", "--checkpoint", str(folder), "--out", str(tmp_path / "out")]) == 0
    state_file = tmp_path / "out" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    assert state["module_state"][CHECKPOINT_KEY]["features_version"] == FEATURES_VERSION
    ChordPredictor.from_checkpoint(tmp_path / "out")
    state["module_state"][CHECKPOINT_KEY]["features_version"] = FEATURES_VERSION + 1
    state_file.write_text(json.dumps(state))
    with pytest.raises(ckpt.CheckpointError) as info:
        ChordPredictor.from_checkpoint(tmp_path / "out")
    assert f"{state_file}: module_state.{CHECKPOINT_KEY}.features_version is {FEATURES_VERSION + 1}" in str(
        info.value
    )
    assert "upgrade audiotrain" in str(info.value)
    capsys.readouterr()
    out = tmp_path / "song.lab"
    assert chords.main(["predict", "--checkpoint", str(tmp_path / "out"), str(song), "-o", str(out)]) == 2
    assert "features_version is" in capsys.readouterr().err


def test_a_run_folder_whose_best_is_being_swapped_in_loads_best_not_last(tmp_path, monkeypatch):
    """Given a run folder, a load in the instant a running fit swapped its new best in found no best and
    took last (neither the old nor the new best), saying nothing."""
    from test_checkpoint import _go_on_once_a_load_sees_it, _save_paused_in_its_swap, _step_of, _write

    folder = tmp_path / "run" / "checkpoints"
    _write(folder, 1, "best")
    _write(folder, 2, "last")
    writer, in_gap, go_on = _save_paused_in_its_swap(monkeypatch, folder, 3)
    try:
        assert in_gap.wait(10) and not (folder / "best").exists()
        _go_on_once_a_load_sees_it(monkeypatch, folder, go_on)
        found = resolve_model_checkpoint(tmp_path / "run")
    finally:
        go_on.set()
        deadlines.join(writer, "the save paused in its swap to finish", 120)
    assert found == folder / "best" and _step_of(found) == 3


def test_a_run_folder_whose_best_save_was_killed_midway_loads_what_it_left_not_last(tmp_path):
    """A save of best killed between its two renames (best moved aside as its prev, the new one not yet in
    place): given the run folder, predict took last (another model) without a word, while the path
    RUN/checkpoints/best loaded best's prev with a warning."""
    from test_checkpoint import _step_of, _write

    folder = tmp_path / "run" / "checkpoints"
    _write(folder, 1, "best")
    _write(folder, 2, "last")
    (folder / "best").rename(folder / ".best.prev-0000aaaa")
    with pytest.warns(
        UserWarning, match=r"best is missing; loading .*\.best\.prev-0000aaaa left by an interrupted"
    ):
        found = resolve_model_checkpoint(tmp_path / "run")
    assert found == folder / ".best.prev-0000aaaa" and _step_of(found) == 1


def test_a_load_torn_by_a_save_is_made_again(run, tmp_path, monkeypatch):
    """A save of the running fit that replaced best between the read of its state and of its weights gave a
    model of two saves (or an error naming a hidden folder): the load is made again."""
    source, best = run / "checkpoints" / "best", tmp_path / "run" / "checkpoints" / "best"
    shutil.copytree(source, best)
    real, reads = ckpt.read_state, []

    def read_state(folder, **settings):
        state = real(folder, **settings)
        reads.append(folder)
        if len(reads) == 1:
            ckpt.copy_checkpoint(source, best)  # the fit saves a new best meanwhile
        return state

    monkeypatch.setattr(ckpt, "read_state", read_state)
    ChordPredictor.from_checkpoint(tmp_path / "run")
    assert reads == [best, best]


def test_an_export_whose_checkpoint_a_save_replaces_midway_is_of_one_save(tmp_path, monkeypatch):
    """Its state (epoch, step, settings) was read from one save of a running fit and its weights from the
    next: an export labelled epoch 3 held the weights of epoch 4."""
    from audiotrain.recipes.chords.export import EXPORT_KEY, export_model

    last = tmp_path / "X" / "last"
    _write_checkpoint(last)
    later_state = ckpt.read_state(last)
    later_state["progress"] = {**later_state["progress"], "epoch": 4, "global_step": 16}
    later = {k: v * 2 for k, v in ckpt.read_arrays(last / ckpt.MODEL_FILE).items()}
    read_header, models_read = ckpt.read_header, []

    def read_and_save_meanwhile(file):
        if file.name == ckpt.MODEL_FILE:
            models_read.append(file)
            if len(models_read) == 1:  # the running fit saves `last` again after the state was read
                ckpt.write_checkpoint(last, later, {}, {}, later_state)
        return read_header(file)

    monkeypatch.setattr(ckpt, "read_header", read_and_save_meanwhile)
    out = export_model(last, tmp_path / "out")
    assert len(models_read) == 2  # read again
    assert ckpt.read_state(out)[EXPORT_KEY] == {"epoch": 4, "global_step": 16}
    exported = ckpt.read_arrays(out / ckpt.MODEL_FILE)
    assert all(np.array_equal(np.array(exported[k]), np.array(later[k])) for k in later)


def test_the_export_summary_quotes_a_folder_with_a_space_so_its_uses_can_be_pasted(run, tmp_path, capsys):
    import shlex

    out = tmp_path / "my export"
    assert chords.main(["export", "--checkpoint", str(run), "--out", str(out)]) == 0
    summary = capsys.readouterr().out
    for use in ("predict --checkpoint", "evaluate --checkpoint", "train --init_from"):
        assert f"{use} {shlex.quote(str(out))}" in summary


def test_predict_and_evaluate_of_a_run_folder_say_which_checkpoint_and_when_best_is_missing(
    run, tmp_path, song, capsys, monkeypatch
):
    """Given a run folder whose best was deleted (pruning disk by hand), predict and evaluate used its last
    checkpoint, another model, without a word, and never said which checkpoint they loaded."""
    best = run / "checkpoints" / "best"
    assert loaded_checkpoint_note(run, best) == f"using {best} (after 3 epochs, 12 steps)"
    assert loaded_checkpoint_note(best, best) is None  # a checkpoint given itself: what the user named
    monkeypatch.chdir(run)  # ... also when named by another path to it
    assert loaded_checkpoint_note(best.relative_to(run), best) is None
    monkeypatch.undo()
    pruned = tmp_path / "pruned"
    last = pruned / "checkpoints" / "last"
    tracked = {
        "ModelCheckpoint{'monitor': 'val_loss'}": {"best_model_path": str(pruned / "checkpoints" / "best")}
    }
    _write_checkpoint(last, callbacks=tracked)
    capsys.readouterr()
    # (evaluate loads its checkpoint as predict does: `cli_predictor._load_predictor`)
    command = ["predict", "--checkpoint", str(pruned), str(song), "-o", str(tmp_path / "song.lab")]
    assert chords.main([*command, "--tta", "0"]) == 0
    assert capsys.readouterr().err == (
        f"using {last} (after 3 epochs, 12 steps), not the run's best: {pruned / 'checkpoints' / 'best'}, "
        "which its validation chose, is missing\n"
    )
    # A best there but damaged (emptied, its record gone) is passed over for last too, and said so: the
    # note named last alone, as if the run had kept no best.
    (pruned / "checkpoints" / "best").mkdir()
    assert chords.main([*command, "--tta", "0", "--overwrite"]) == 0
    assert capsys.readouterr().err == (
        f"using {last} (after 3 epochs, 12 steps), not the run's best: {pruned / 'checkpoints' / 'best'}, "
        "which its validation chose, cannot be loaded (it holds no trainer_state.json)\n"
    )
    # A run that kept no best (it did not validate) uses its last one as it should: named, no more; also
    # where its --save_every checkpoints (a ModelCheckpoint without a monitor) record their newest as best.
    _write_checkpoint(last)
    assert loaded_checkpoint_note(pruned, last) == f"using {last} (after 3 epochs, 12 steps)"
    periodic = {"PeriodicCheckpoints": {"best_model_path": str(pruned / "checkpoints" / "epoch=002")}}
    _write_checkpoint(last, callbacks=periodic)
    assert loaded_checkpoint_note(pruned, last) == f"using {last} (after 3 epochs, 12 steps)"


def test_a_run_with_a_relative_checkpoint_dir_is_a_run_folder_for_every_loader(run, tmp_path, capsys):
    """`--checkpoint_dir ckpts` keeps the checkpoints in RUN/ckpts, as config.json records: predict, evaluate,
    export and --init_from asked "a run folder?" of the run folder itself."""
    moved = tmp_path / "run_e"
    shutil.copytree(run / "checkpoints", moved / "ckpts")
    (moved / "config.json").write_text(json.dumps({"config": {"checkpoint_dir": "ckpts"}, "versions": {}}))
    best = moved / "ckpts" / "best"
    assert resolve_model_checkpoint(moved) == best
    assert ChordPredictor.from_checkpoint(moved).checkpoint == best
    assert check_init_from(with_checkpoint_model(TrainingConfig(), moved), moved, tmp_path / "new")[0] == best
    assert chords.main(["export", "--checkpoint", str(moved), "--out", str(tmp_path / "exported")]) == 0
    assert chords.main(["export", "--checkpoint", str(moved), "--out", str(moved / "ckpts" / "small")]) == 2
    assert "lies in the run's checkpoints folder" in capsys.readouterr().err
    # One leading out of the run folder is not read (as a link out of it is not), and its error names it.
    (moved / "config.json").write_text(json.dumps({"config": {"checkpoint_dir": "../ckpts"}, "versions": {}}))
    (moved / "ckpts").rename(tmp_path / "ckpts")
    with pytest.raises(ckpt.CheckpointError, match=r"run_e is not a complete .*records its checkpoints in"):
        resolve_model_checkpoint(moved)


def test_a_run_folders_config_json_linked_elsewhere_or_not_json_is_refused(run, tmp_path, capsys):
    """Loading reads nothing outside the folder it was given: a run folder's config.json linked to a record
    elsewhere (whose checkpoint_dir chose another checkpoint) was read and followed, and one that is not JSON
    was passed over without a word; both are refused naming the file, by predict and by a trainer's load."""
    moved = tmp_path / "run_l"
    shutil.copytree(run / "checkpoints", moved / "alt")
    elsewhere = tmp_path / "elsewhere" / "config.json"
    elsewhere.parent.mkdir()
    elsewhere.write_text(json.dumps({"config": {"checkpoint_dir": "alt"}, "versions": {}}))
    (moved / "config.json").symlink_to(elsewhere)
    leads_out = rf"run_l/config.json leads outside {moved} \(a link to {elsewhere}\).*cp -L"
    with pytest.raises(ckpt.CheckpointError, match=leads_out):
        resolve_model_checkpoint(moved)
    bare = tmp_path / "bare"  # (no checkpoint under it: the trainer's "not a complete checkpoint" hint)
    bare.mkdir()
    (bare / "config.json").symlink_to(elsewhere)
    with pytest.raises(ckpt.CheckpointError, match=r"bare/config.json leads outside"):
        ckpt.resolve_checkpoint(bare)
    (moved / "config.json").unlink()
    (moved / "config.json").write_text("{not json")
    with pytest.raises(ckpt.CheckpointError, match=r"run_l/config.json: not valid JSON at line 1"):
        resolve_model_checkpoint(moved)
    # A copied record is the run's own, and chooses as before.
    shutil.copy(elsewhere, moved / "config.json")
    assert resolve_model_checkpoint(moved) == moved / "alt" / "best"


def test_a_cross_validation_run_folder_is_named_as_one_with_its_folds(run, tmp_path, song, capsys):
    cv_run = tmp_path / "cv1"
    for k in (0, 2, 10):
        shutil.copytree(run, cv_run / f"fold{k}")
    (cv_run / "oof").mkdir()
    (cv_run / "fold3_old").mkdir()  # (a user's folder, not a fold)
    (cv_run / "cv_scores.json").write_text("{}")
    assert chords.main(["predict", "--checkpoint", str(cv_run), str(song)]) == 2
    err = capsys.readouterr().err
    assert f"{cv_run} is a cross-validation run" in err
    assert f"use one fold's run folder, e.g. {cv_run / 'fold0'} (its folds: fold0, fold2, fold10)" in err


@pytest.mark.parametrize(
    "keep, message",
    [
        (0, r"model\.safetensors: the file is empty \(0 bytes\); copy or download it again"),
        (4, r"model\.safetensors is cut short \(4 bytes, less than its safetensors header\)"),
        (1000, r"model\.safetensors is cut short \(1000 bytes, less than its \d+-byte header\)"),
        (-8, r"model\.safetensors is cut short: its tensors take \d+ bytes, .*copy or download it again"),
    ],
)
def test_a_weights_file_empty_or_cut_short_is_named_as_such(run, tmp_path, keep, message):
    """An interrupted copy or download of a shared model: both said 'its header length is missing or
    invalid', which reads as a file of another format."""
    share = tmp_path / "share"
    shutil.copytree(run / "checkpoints" / "best", share)
    weights = (share / ckpt.MODEL_FILE).read_bytes()
    (share / ckpt.MODEL_FILE).write_bytes(weights[:keep])
    with pytest.raises(ckpt.CheckpointError, match=message):
        ChordPredictor.from_checkpoint(share)


def test_export_and_from_checkpoint_of_a_run_folder_say_which_checkpoint_and_when_best_is_missing(
    run, tmp_path, capsys
):
    """export named the run folder alone, and ChordPredictor.from_checkpoint said nothing, where a run's last
    checkpoint (another model) stood in for the best its validation chose."""
    best = run / "checkpoints" / "best"
    assert chords.main(["export", "--checkpoint", str(run), "--out", str(tmp_path / "of_best")]) == 0
    assert capsys.readouterr().err == f"using {best} (after 3 epochs, 12 steps)\n"
    pruned = tmp_path / "pruned"
    last = pruned / "checkpoints" / "last"
    tracked = {
        "ModelCheckpoint{'monitor': 'val_loss'}": {"best_model_path": str(pruned / "checkpoints" / "best")}
    }
    _write_checkpoint(last, callbacks=tracked)
    assert chords.main(["export", "--checkpoint", str(pruned), "--out", str(tmp_path / "of_last")]) == 0
    stand_in = (
        f"using {last} (after 3 epochs, 12 steps), not the run's best: {pruned / 'checkpoints' / 'best'}, "
        "which its validation chose, is missing"
    )
    assert capsys.readouterr().err == stand_in + "\n"
    with pytest.warns(StandInCheckpointWarning) as warned:
        assert ChordPredictor.from_checkpoint(pruned).checkpoint == last
    assert [str(w.message) for w in warned] == [stand_in]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (the run's best itself, or a checkpoint named: nothing to say)
        ChordPredictor.from_checkpoint(run)
        ChordPredictor.from_checkpoint(last)


def test_a_folder_the_readmes_fine_tuning_saved_twice_in_is_refused_naming_both_runs(run, tmp_path):
    """The README's fine-tuning script run twice with one default_root_dir saves the second model in
    checkpoints/version_1/last; the folder given to predict loaded the first run's checkpoints/last, the older
    model, with nothing said. It is refused naming both, and each checkpoint loads when named."""
    tuned = tmp_path / "tuned"
    for _ in range(2):
        task = ChordTask.load_from_checkpoint(run, model_config=MODEL, learning_rate=1e-3, scheduler=None)
        trainer = Trainer(max_epochs=1, default_root_dir=tuned, enable_progress_bar=False)
        trainer.fit(task, _batches())
    second = Path(trainer.checkpoint_callback.last_model_path)
    assert second.parent.name == "version_1"
    with pytest.raises(
        ckpt.CheckpointError, match=r"several Trainer runs .*checkpoints/last, .*version_1/last"
    ):
        ChordPredictor.from_checkpoint(tuned)
    assert ChordPredictor.from_checkpoint(second).checkpoint == second
    assert ChordPredictor.from_checkpoint(tuned / "checkpoints" / "last").window_frames == WINDOW_FRAMES


def test_a_run_inside_another_users_closed_folder_is_shared_by_opening_the_way_to_it(
    run, song, tmp_path, monkeypatch, capsys
):
    """A teacher's --checkpoint RUN/checkpoints/best of a student's run made under umask 077 (or a run inside
    a student's home folder of mode 700) was told to ask for 'chmod -R go+rX RUN/checkpoints/best', which
    leaves RUN (and RUN/checkpoints) closed: the teacher's next try failed the same."""
    closed_to_this_user(monkeypatch, run)
    checkpoint = run / "checkpoints" / "best"
    assert chords.main(["predict", "--checkpoint", str(checkpoint), str(song)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: {checkpoint}: cannot look into {run} (Permission denied)"), error
    assert f"chmod go+x {run} {run / 'checkpoints'} && chmod -R go+rX {checkpoint}" in error


def test_another_users_run_is_one_line_naming_it_and_how_its_owner_shares_it(
    run, song, tmp_path, monkeypatch, capsys
):
    """A teacher's predict, evaluate or export --checkpoint of a student's run made under umask 077 stopped
    with a traceback ending in "PermissionError: [Errno 13] Permission denied: 'RUN/trainer_state.json'"."""
    closed_to_this_user(monkeypatch, run)
    for checkpoint in (run,):  # (one inside it: the test above)
        assert chords.main(["predict", "--checkpoint", str(checkpoint), str(song)]) == 2
        error = capsys.readouterr().err
        assert error.startswith(
            f"error: {checkpoint}: cannot read it (Permission denied): another user's run"
        ), error
        assert f"chmod -R go+rX {checkpoint}" in error


def test_a_run_folder_that_kept_no_checkpoint_is_named_as_a_run_folder(run, tmp_path, song, capsys):
    """A run stopped before its first save (or whose checkpoints were moved) given to predict or evaluate
    was 'not a complete audiotrain checkpoint: it holds none of model.safetensors, trainer_state.json', as
    if the run folder were meant as a checkpoint itself: nothing said where its checkpoints were sought."""
    early = tmp_path / "early"
    early.mkdir()
    (early / "config.json").write_text("{}")  # (what the recipe writes first; no checkpoint_dir recorded)
    (early / "checkpoints").mkdir()
    capsys.readouterr()
    assert chords.main(["predict", "--checkpoint", str(early), str(song), "-o", str(tmp_path / "s.lab")]) == 2
    err = capsys.readouterr().err
    assert f"{early} is a run folder, but {early / 'checkpoints'} holds no best or last checkpoint" in err


def test_a_run_under_the_home_folder_given_with_a_tilde_loads_from_python(run, monkeypatch):
    """`ChordPredictor.from_checkpoint("~/runs/mine")` said 'checkpoint folder ~/runs/mine does not exist',
    though `predict --checkpoint ~/runs/mine` and Trainer(default_root_dir="~/runs") read `~` as the home
    folder; so did ChordTask.load_from_checkpoint."""
    monkeypatch.setenv("HOME", str(run.parent))
    predictor = ChordPredictor.from_checkpoint(f"~/{run.name}")
    assert predictor.checkpoint == run / "checkpoints" / "best"
    assert ChordTask.load_from_checkpoint(Path("~", run.name)).model.config == MODEL


def test_song_loaders_read_a_leading_tilde_as_the_home_folder(run, song, tmp_path, monkeypatch):
    """song_loaders("~/runs/mine", "~/my_songs") said 'song folder ~/my_songs does not exist', though
    `train --data ~/my_songs` and Trainer(default_root_dir="~/runs") read `~` as the home folder."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "runs").mkdir()
    shutil.copytree(run, tmp_path / "runs" / "mine")
    songs = tmp_path / "my_songs"
    songs.mkdir()
    for name in "abcd":
        shutil.copy(song, songs / f"{name}.wav")
        (songs / f"{name}.lab").write_text("0.0\t3.0\tC:maj\n")
    loaders = song_loaders("~/runs/mine", "~/my_songs", batch_size=2, test_fraction=0, cache_dir="~/cache")
    assert len(loaders[0]) > 0 and any((tmp_path / "cache" / "features").rglob("*"))
    assert not (Path.cwd() / "~").exists()


def test_export_overwrite_replaces_an_export_that_was_opened_in_the_finder(run, tmp_path, capsys):
    """Opening an export in the Finder leaves .DS_Store in it (and ._model.safetensors on an exFAT drive):
    `export --overwrite` refused, "is an earlier export, but it also holds .DS_Store, ._model.safetensors,
    which --overwrite would delete with it". macOS made them, not the user: the export is replaced."""
    out = tmp_path / "shared_model"
    assert chords.main(["export", "--checkpoint", str(run), "--out", str(out)]) == 0
    (out / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (out / "._model.safetensors").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00")
    capsys.readouterr()
    assert chords.main(["export", "--checkpoint", str(run), "--out", str(out), "--overwrite"]) == 0, (
        capsys.readouterr().err
    )
    assert {p.name for p in out.iterdir()} - {".DS_Store", "._model.safetensors"} <= set(
        ckpt.CHECKPOINT_FILES
    )
    assert ChordPredictor.from_checkpoint(out) is not None
