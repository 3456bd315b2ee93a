"""The chord recipe from the user's side: config and flags, the task on the Trainer, and the CLI end to end."""

import dataclasses
import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import traceback
import unicodedata
from dataclasses import asdict
from pathlib import Path

from audiotrain.chords.lab import read_annotation, read_lab, write_jams
from audiotrain.datasets.chord_demo import generate_demo_songs
from audiotrain.datasets.chord_songs import SongEntry, crop_bins
from audiotrain.metrics.tracker import MetricsTracker
from audiotrain.models.chord_model import ChordModelConfig
from audiotrain.recipes._run import clear_run_outputs
from audiotrain.recipes.chords import cli as chords
from audiotrain.recipes.chords import train as chords_train
from audiotrain.recipes.chords.config import ChordDataConfig, ChordFeatureConfig, TrainingConfig
from audiotrain.recipes.chords.data import (
    SongSplits,
    pitch_shift_note,
    training_pitch_shifts,
    unwritable_cache_advice,
)
from audiotrain.recipes.chords.predict import ChordPredictor, taper
from audiotrain.recipes.chords.task import CHECKPOINT_KEY, ChordTask, make_schedule
from audiotrain.recipes.config_cli import load_config_file
from audiotrain.recipes.split_record import names_digest
from audiotrain.train import checkpoint as ckpt
from audiotrain.train.callbacks import Callback
from audiotrain.train.trainer import Trainer

import mir_eval
import mlx.core as mx
import numpy as np
import pytest
import soundfile as sf
from built_once import built_once
from child_processes import run_as_main
from exactness import assert_same_numbers
from file_size_limit import files_cannot_grow_past, needs_file_size_limit

TINY_FLAGS = [
    "--data.demo_songs", "4", "--data.demo_test_songs", "1", "--data.demo_seconds", "8",
    "--data.window_frames", "32", "--batch_size", "4", "--num_epochs", "2", "--save_every", "1",
    "--model.d_model", "32", "--model.n_layers", "1", "--model.n_heads", "2", "--model.ff_dim", "64",
    "--progress_bar", "false",
    "--features.max_pitch_shift", "3",  # 6 by default: what predict --tta may then ask for is checked
]  # fmt: skip


def tiny_model(**overrides) -> ChordModelConfig:
    values = dict(n_bins=216, d_model=32, n_layers=1, n_heads=2, ff_dim=64, dropout=0.0)
    values.update(overrides)
    return ChordModelConfig(**values)


# ---- configuration -----------------------------------------------------------------------------------------


def test_default_config_has_the_seed_fields():
    config = TrainingConfig()
    for name in (
        "learning_rate", "weight_decay", "batch_size", "num_epochs", "warmup_epochs", "scheduler", "gradient_clip",
        "label_smoothing", "checkpoint_dir", "save_every", "patience", "min_delta", "log_every",
    ):  # fmt: skip
        assert hasattr(config, name)
    assert config.model.n_bins == config.features.n_bins


def test_invalid_config_values_name_the_field():
    with pytest.raises(ValueError, match="scheduler"):
        TrainingConfig(scheduler="step")
    with pytest.raises(ValueError, match="batch_size"):
        TrainingConfig(batch_size=0)
    with pytest.raises(ValueError, match="label_smoothing"):
        TrainingConfig(label_smoothing=1.5)


def test_yaml_file_fills_nested_sections_and_reports_unknown_fields(tmp_path):
    good = tmp_path / "run.yaml"
    good.write_text("learning_rate: 0.0005\nmodel:\n  d_model: 64\nfeatures:\n  n_bins: 180\n")
    config = load_config_file(TrainingConfig(), good)
    assert config.learning_rate == 5e-4 and config.model.d_model == 64
    assert config.model.n_bins == 180  # follows the features
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  width: 3\n")
    with pytest.raises(ValueError, match=r"bad\.yaml.*unknown field 'model\.width'"):
        load_config_file(TrainingConfig(), bad)
    wrong_type = tmp_path / "type.yaml"
    wrong_type.write_text("batch_size: many\n")
    with pytest.raises(ValueError, match="batch_size.*int"):
        load_config_file(TrainingConfig(), wrong_type)


def test_flags_override_nested_fields():
    parser = chords._training_parser("prog", "test", needs_data=False)
    args = parser.parse_args(
        ["--learning_rate", "0.01", "--model.n_layers", "3", "--data.pitch_shift", "false"]
    )
    config = chords._config_from_args(args)
    assert config.learning_rate == 0.01 and config.model.n_layers == 3 and config.data.pitch_shift is False
    assert config.model.d_model == TrainingConfig().model.d_model


def test_the_models_bass_view_follows_the_features_bass_view_set_alone(tmp_path):
    """The model reads every feature bin, the bass view's too: ``features.bass_view_bins`` set alone (with
    ``n_bins`` as it is) must reach ``model.bass_view_bins``, else the run fails after its feature pass
    ("expects features [batch, frames, 324], got ... 216"). As a dataclass, a flag and a --config file."""
    assert TrainingConfig().model.bass_view_bins == TrainingConfig().features.bass_view_bins != 0
    assert TrainingConfig(features=ChordFeatureConfig(bass_view_bins=0)).model.bass_view_bins == 0
    parser = chords._training_parser("prog", "test", needs_data=False)
    config = chords._config_from_args(parser.parse_args(["--features.bass_view_bins", "0"]))
    assert (config.features.bass_view_bins, config.model.bass_view_bins) == (0, 0)
    file = tmp_path / "run.yaml"
    file.write_text("features:\n  bass_view_bins: 12\n")
    config = load_config_file(TrainingConfig(), file)
    assert (config.features.bass_view_bins, config.model.bass_view_bins) == (12, 12)


def test_the_documented_defaults_are_the_configs():
    """README.md states the recipe's defaults (those seed 002's Trainer takes too): each number it gives is
    the one TrainingConfig and the presets hold."""
    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    rates = re.search(
        r"`learning_rate` (\S+) \(not [^)]*\), `num_epochs` (\d+) \(not \d+\), `warmup_epochs` (\d+) \(not",
        readme,
    )
    saves = re.search(r"`--save_every` epochs \(default (\d+), `production` (\d+);", readme)
    demo = re.search(r"The default demo \((\d+) \+ (\d+) songs\)", readme)
    assert rates and saves and demo
    config, production = TrainingConfig(), chords.PRESETS["production"]
    assert config.learning_rate == float(rates[1])
    assert (config.num_epochs, config.warmup_epochs) == (int(rates[2]), int(rates[3])) == (38, 1)
    assert (config.save_every, production["save_every"]) == (int(saves[1]), int(saves[2])) == (5, 10)
    assert (config.data.demo_songs, config.data.demo_test_songs) == (int(demo[1]), int(demo[2])) == (224, 8)


def test_a_relative_cache_folder_is_made_absolute_so_config_json_repeats_the_run_anywhere(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    parser = chords._training_parser("prog", "test", needs_data=False)
    config = chords._config_from_args(parser.parse_args(["--data.cache_dir", "cacheq"]))
    assert config.data.cache_dir == str(tmp_path / "cacheq")
    home = chords._config_from_args(parser.parse_args(["--data.cache_dir", "~/c"])).data.cache_dir
    assert home == str(Path("~/c").expanduser().resolve())
    assert chords._config_from_args(parser.parse_args([])).data.cache_dir is None  # (the default's own)


def test_the_device_flag_sets_where_training_runs():
    parser = chords._training_parser("prog", "test", needs_data=False)
    config = chords._config_from_args(parser.parse_args(["--device", "cpu"]))
    assert config.device == "cpu" and config.training_device() == "cpu"
    assert chords._config_from_args(parser.parse_args([])).device == "auto"


def test_help_lists_commands_and_every_setting(capsys):
    assert chords.main(["--help"]) == 0
    top = capsys.readouterr().out
    for command in ("train", "evaluate", "predict", "demo"):
        assert command in top
    status = chords.main(["train", "--help"])
    assert status == 0
    text = capsys.readouterr().out
    for flag in ("--data", "--learning_rate", "--scheduler", "--patience", "--model.d_model", "--features.hop_length",
                 "--decode.method", "--data.window_frames", "--resume"):  # fmt: skip
        assert flag in text
    assert "--model.n_bins" not in text  # derived from --features.n_bins
    assert "(default: train,studio,patches)" in text  # a tuple's default as the flag takes it
    assert top.count("commands:") == 1  # the list of commands, once


def test_predict_help_shows_its_defaults_and_names_its_values(capsys):
    status = chords.main(["predict", "--help"])
    assert status == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "for stdout (default: lab)" in text
    assert "--decode.self_transition P " in text and "--decode.median_frames FRAMES " in text


def test_label_smoothing_help_names_every_loss_it_smooths(capsys):
    """--help said "label smoothing of the three cross-entropies" where a model with the joint chord head
    (the recipe's default) has four, and the chord head's is smoothed too."""
    assert chords.main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    smoothed = (
        "label smoothing of the heads' cross-entropies (chord type, root, bass and the joint chord head's)"
    )
    assert smoothed in text


def test_train_help_names_the_label_syntax_and_the_chord_types_labels_train_as(capsys):
    """train --help said nothing of the labels: a musician with C:13, C:sus4(b7) or C:7(#5) annotations could
    not learn there that labels are Harte syntax, nor which 32 chord types they train as."""
    assert chords.main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Harte syntax (A:min, G:7, C:maj7/3, N, X)" in text
    types = "one of 32 chord types, with a root and a bass: N, X, maj, min, dim, aug, sus2, sus4, 5, 1,"
    assert types in text
    assert "maj6(9), 7(b9), 7(#9);" in text and "data_report.txt" in text


def test_adamw_keeps_mlxs_rule_by_default_and_bias_correction_gives_torchs(capsys):
    # The default learning rate was tuned with MLX's AdamW (no bias correction): kept, and documented.
    parser = chords._training_parser("prog", "test", needs_data=False)
    default = chords._config_from_args(parser.parse_args([]))
    corrected = chords._config_from_args(parser.parse_args(["--bias_correction", "true"]))
    steps = {"scheduler": None, "steps_per_epoch": 1}
    for config, expected in ((default, False), (corrected, True)):
        task = ChordTask(config.model, bias_correction=config.bias_correction, **steps)
        assert task.configure_optimizers().optimizer.bias_correction is expected
        assert (
            chords_train.build_task(config, [], 1).configure_optimizers().optimizer.bias_correction
            is expected
        )
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "tuned with MLX's AdamW, which has no bias correction unless --bias_correction true" in text


def test_schedules_warm_up_then_decay():
    cosine, _ = make_schedule("cosine", 1e-3, num_epochs=10, warmup_epochs=1, steps_per_epoch=10)
    assert cosine(0).item() < cosine(9).item() == pytest.approx(1e-3)
    assert cosine(100).item() == pytest.approx(1e-5, rel=1e-3)  # min_lr = lr / 100 at total_steps
    onecycle, _ = make_schedule("onecycle", 1e-3, num_epochs=10, warmup_epochs=2, steps_per_epoch=10)
    peak = max(onecycle(s).item() for s in range(100))
    assert peak == pytest.approx(1e-3, rel=1e-3) and onecycle(99).item() < 1e-5
    with pytest.raises(ValueError, match="scheduler"):
        make_schedule("linear", 1e-3, 1, 0, 1)


def test_schedules_keep_a_warmup_longer_than_the_run_and_onecycle_anneals_within_it():
    """A cosine warmup of 2 epochs in a 1-epoch run rises at its own pace and ends below the peak (as torch's
    linear warmup); onecycle's rise is capped at 90% of the run, so it still anneals to ~0 by the end; and
    onecycle refuses a run of fewer than 3 steps."""
    cosine, _ = make_schedule("cosine", 1e-3, num_epochs=1, warmup_epochs=2, steps_per_epoch=10)
    assert cosine(9).item() == pytest.approx(5e-4)  # 10 of the 20 warmup steps
    onecycle, _ = make_schedule("onecycle", 1e-3, num_epochs=1, warmup_epochs=5, steps_per_epoch=10)
    assert onecycle(8).item() == pytest.approx(1e-3) and onecycle(9).item() < 1e-6
    with pytest.raises(ValueError, match="at least 3 optimizer steps, training has 2"):
        make_schedule("onecycle", 1e-3, num_epochs=1, warmup_epochs=0, steps_per_epoch=2)


def test_the_constant_schedule_warms_up_over_warmup_epochs_as_the_flag_says():
    """``--scheduler constant --warmup_epochs 2`` trained at the full rate from the first step: the warmup was
    dropped without a word (config.json still said 2.0). It rises over the warmup's steps, then stays at the
    peak, as the CLAP recipe's and create_trainer's constant schedules do; ``--warmup_epochs 0``: none."""
    parser = chords._training_parser("prog", "test", needs_data=False)
    flags = ["--scheduler", "constant", "--learning_rate", "0.004", "--num_epochs", "4"]
    for warmup, expected in (("2", [1e-3, 2e-3, 3e-3, 4e-3, 4e-3, 4e-3]), ("0", [4e-3] * 6)):
        config = chords._config_from_args(parser.parse_args([*flags, "--warmup_epochs", warmup]))
        optimizer = chords_train.build_task(config, [], 2).configure_optimizers().optimizer
        schedule = optimizer._schedulers.get("learning_rate")  # (none: the rate is a number)
        rates = [(schedule(step) if schedule else optimizer.learning_rate).item() for step in range(6)]
        assert rates == pytest.approx(expected)


def test_a_task_at_learning_rate_0_with_a_warmup_still_builds_its_constant_optimizer():
    """ChordTask(learning_rate=0, scheduler=None), a task that must not move its weights (ChordTask keeps 0
    for it), built its optimizer whatever warmup_epochs said; once the constant schedule warmed up it stopped
    in configure_optimizers with 'WarmupCosineScheduler peak_lr must be ... > 0.0': a warmup to 0 is 0."""
    task = ChordTask(
        ChordModelConfig(), learning_rate=0, scheduler=None, warmup_epochs=1, num_epochs=2, steps_per_epoch=3
    )
    optimizer = task.configure_optimizers().optimizer
    assert optimizer.learning_rate.item() == 0.0


def test_resuming_a_constant_run_that_trained_without_its_warmup_says_the_rate_drops_and_rises(
    tmp_path, capsys
):
    """A --scheduler constant run from before the constant schedule warmed up trained at the full rate from
    its first step (its checkpoint names the schedule 'constant') while config.json recorded warmup_epochs.
    Resumed inside that warmup, the rebuilt schedule dropped the rate and ramped it again without a word,
    and the changed-settings line gave the old run a warmup rate it never trained at."""
    run = tmp_path / "run"
    flags = [
        "demo", *TINY_FLAGS, "--data.cache_dir", str(tmp_path / "cache"), "--run_dir", str(run),
        "--scheduler", "constant", "--warmup_epochs", "3", "--learning_rate", "0.002",
    ]  # fmt: skip
    assert chords.main([*flags, "--num_epochs", "1"]) == 0
    state_file = run / "checkpoints/last" / ckpt.STATE_FILE
    state = json.loads(state_file.read_text())
    assert state["config"]["lr_schedule_name"] == "warmup_constant"
    state["config"]["lr_schedule_name"] = "constant"  # as the run of an older build recorded it
    state_file.write_text(json.dumps(state))
    capsys.readouterr()
    assert chords.main([*flags, "--num_epochs", "2", "--resume", str(run / "checkpoints/last")]) == 0
    err = capsys.readouterr().err
    assert "the rate goes from 0.002 at its last step" in err, err
    assert re.search(
        r"note: \S+ trained at a constant --learning_rate 0.002 from its first step; .* the rate "
        r"goes to [\d.e-]+ at the next step and rises again over the rest of the warmup",
        err,
    ), err


def test_chord_tasks_weight_decay_warmup_and_schedule_name_reach_the_optimizer():
    """The keywords a Python user gives ChordTask reach AdamW and the schedule: the weight decay, a warmup
    of half an epoch (5 steps, not truncated to none), and the schedule's name the run state records."""
    task = ChordTask(ChordModelConfig(), weight_decay=0.05, scheduler=None)
    config = task.configure_optimizers()
    assert config.optimizer.weight_decay == 0.05 and config.lr_schedule_name == "constant"
    steps = {"num_epochs": 2, "steps_per_epoch": 10}
    cosine = ChordTask(ChordModelConfig(), warmup_epochs=0.5, **steps).configure_optimizers()
    assert cosine.lr_schedule_name == "warmup_cosine"
    assert cosine.optimizer.learning_rate.item() == pytest.approx(2e-4)  # step 0: 1 of 5 warmup steps
    onecycle = ChordTask(ChordModelConfig(), scheduler="onecycle", **steps).configure_optimizers()
    assert onecycle.lr_schedule_name == "one_cycle"


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        (
            {"learning_rate": -1, "scheduler": None},
            r"ChordTask\(learning_rate=\.\.\.\) must be a finite number >= 0, got -1",
        ),
        (
            {"learning_rate": "abc"},
            r"ChordTask\(learning_rate=\.\.\.\) must be a finite number >= 0, got 'abc'",
        ),
        (
            {"weight_decay": -5, "scheduler": None},
            r"ChordTask\(weight_decay=\.\.\.\) must be a finite number >= 0",
        ),
        ({"num_epochs": 0}, r"ChordTask\(num_epochs=\.\.\.\) must be an integer > 0, got 0"),
        ({"steps_per_epoch": 0}, r"ChordTask\(steps_per_epoch=\.\.\.\) must be an integer > 0, got 0"),
        ({"warmup_epochs": -1}, r"ChordTask\(warmup_epochs=\.\.\.\) must be a finite number >= 0"),
        ({"scheduler": "linear"}, r"ChordTask\(scheduler=\.\.\.\) must be one of .*got 'linear'"),
    ],
)
def test_chord_task_refuses_optimizer_settings_the_flags_refuse_naming_the_keyword(keywords, message):
    """A negative rate with scheduler=None trained as gradient ascent; a negative weight decay, no epochs
    or no steps were taken silently (only the cosine schedule refused a rate <= 0, without the keyword)."""
    with pytest.raises(ValueError, match=message):
        ChordTask(ChordModelConfig(), **keywords)


# ---- the task on the Trainer -------------------------------------------------------------------------------


def synthetic_batches(n: int, rng: np.random.Generator, batch: int = 4, frames: int = 16):
    """Frames whose bins light up at the root's pitch class (3 bins per semitone): learnable in a few steps."""
    batches = []
    for _ in range(n):
        root = rng.integers(0, 12, size=(batch, frames // 4)).repeat(4, axis=1)
        features = 0.1 * rng.standard_normal((batch, frames, 216)).astype(np.float32)
        for octave in range(6):
            np.put_along_axis(features, (3 * root + 36 * octave)[..., None], 3.0, axis=2)
        chord_type = np.where(root % 2 == 0, 2, 3).astype(np.int32)
        batches.append(
            {
                "features": mx.array(features),
                "chord_type": mx.array(chord_type),
                "root": mx.array(root.astype(np.int32)),
                "bass": mx.array(root.astype(np.int32)),
                "mask": mx.ones((batch, frames)),
            }
        )
    return batches


def test_task_reports_per_head_losses_and_accuracies_in_the_history(tmp_path):
    rng = np.random.default_rng(0)
    train, val = synthetic_batches(8, rng), synthetic_batches(2, rng)
    task = ChordTask(  # the synthetic frames have the CQT's 216 bins and no bass view
        tiny_model(bass_view_bins=0),
        learning_rate=3e-3,
        num_epochs=12,
        warmup_epochs=1,
        steps_per_epoch=len(train),
    )
    trainer = Trainer(
        max_epochs=12, default_root_dir=tmp_path, enable_progress_bar=False, enable_checkpointing=False
    )
    trainer.fit(task, train, val)
    history = trainer.history
    for key in ("train_loss", "val_loss", "val_chord_type_acc", "val_root_acc", "val_bass_note_acc", "learning_rate",
                "val_chord_type_loss", "val_root_loss", "val_bass_note_loss"):  # fmt: skip
        assert key in history and len(history[key]) == 12
    # It learns: the loss falls and accuracies end far above chance (1/12 for root and bass).
    assert history["train_loss"][-1] < 0.6 * history["train_loss"][0]
    assert history["val_root_acc"][-1] > 0.5
    assert history["val_bass_note_acc"][-1] > 0.5
    assert history["val_chord_type_acc"][-1] > 0.6


def test_root_and_bass_accuracies_in_the_history_are_over_the_frames_that_have_a_root(tmp_path):
    """Frame accuracies, as scores.json's: a batch of N frames (a song's silent intro) has no root to get
    right. Each batch's ratio was weighted by all its frames, so an all-N batch counted as 0% at full
    weight (val_root_acc 5.13% where the frames gave 7.69%), and batches with more N frames weighed more."""
    rng = np.random.default_rng(0)
    batches = synthetic_batches(3, rng)
    for i, n_frames in ((0, 16), (1, 5)):  # all N; 5 N frames in each window
        n = np.zeros((4, 16), bool)
        n[:, :n_frames] = True
        batch = batches[i]
        batch["chord_type"] = mx.where(mx.array(n), 0, batch["chord_type"])
        batch["root"] = batch["bass"] = mx.where(mx.array(n), -1, batch["root"])
    batches[2]["mask"] = mx.array(np.tile(np.arange(16) < 12, (4, 1)), mx.float32)  # padding too
    task = ChordTask(tiny_model(bass_view_bins=0), learning_rate=0.0, scheduler=None)
    task.eval()
    tracker = MetricsTracker()
    for batch in batches:
        outputs = task(batch["features"], batch["mask"])
        padding = np.array(batch["mask"]) == 0
        tracker.update(
            {},
            {"root": outputs["root"], "bass_note": outputs["bass"]},
            {
                k: np.where(padding, -1, np.array(batch[key]))
                for k, key in (("root", "root"), ("bass_note", "bass"))
            },
        )
    frames = tracker.get_metrics()  # percent
    (val,) = Trainer(max_epochs=1, default_root_dir=tmp_path, enable_progress_bar=False).validate(
        task, batches
    )
    assert 100 * val["val_root_acc"] == pytest.approx(frames["root_acc"], rel=1e-5)
    assert 100 * val["val_bass_note_acc"] == pytest.approx(frames["bass_note_acc"], rel=1e-5)
    trainer = Trainer(  # the same in training (a learning rate of 0 keeps the weights)
        max_epochs=1, default_root_dir=tmp_path, enable_progress_bar=False, enable_checkpointing=False
    )
    trainer.fit(task, batches)
    assert 100 * trainer.history["train_root_acc"][0] == pytest.approx(frames["root_acc"], rel=1e-5)


def test_task_rejects_batches_without_targets():
    task = ChordTask(tiny_model())
    with pytest.raises(KeyError, match="root"):
        task.compute_loss({"features": mx.zeros((1, 4, 216)), "chord_type": mx.zeros((1, 4), mx.int32)})


# ---- prediction ---------------------------------------------------------------------------------------------


def test_a_task_refuses_a_checkpoint_of_another_model_naming_the_settings():
    task = ChordTask(tiny_model())
    stored = {CHECKPOINT_KEY: {"model_config": tiny_model(d_model=64, chord_head=False).to_dict()}}
    with pytest.raises(
        ValueError, match=r"model.d_model \(64 there, 32 here\), model.chord_head \(False there, True"
    ):
        task.on_load_checkpoint(stored)
    task.on_load_checkpoint({CHECKPOINT_KEY: {"model_config": tiny_model().to_dict()}})  # its own: loads


def test_windowed_posteriors_are_distributions_for_any_length():
    """Every frame is in a window, whatever the song's length: a last window placed one frame short left
    that frame with no weight and NaN posteriors. 16 to 28 frames leave each remainder of the hop of 12."""
    from audiotrain.models.chord_model import ChordRecognitionModel
    from audiotrain.recipes.chords.config import ChordFeatureConfig

    predictor = ChordPredictor(
        ChordRecognitionModel(tiny_model()), ChordFeatureConfig(), window_frames=16, batch_windows=2
    )
    assert predictor.window_hop == 12
    rng = np.random.default_rng(1)
    for frames in (5, *range(16, 29), 57):
        probs = predictor.posteriors_from_features(rng.standard_normal((frames, 324)).astype(np.float32))
        assert probs["chord_type"].shape == (frames, 32) and probs["root"].shape == (frames, 12)
        for p in probs.values():
            np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-4)
    assert taper(16).min() > 0 and taper(16).max() <= 1.0
    with pytest.raises(ValueError, match=r"\[frames, 324\]"):  # 216 CQT bins, then the bass view's 108
        predictor.posteriors_from_features(np.zeros((10, 216), np.float32))


# ---- the command line, end to end ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny demo run shared by the CLI tests (a few short songs, a handful of steps)."""
    root = tmp_path_factory.mktemp("chords")
    run_dir = root / "run"
    code = chords.main([*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--run_dir", str(run_dir)])
    assert code == 0
    return root, run_dir


def test_demo_run_writes_everything_into_the_run_folder(tiny_run, capsys):
    _, run_dir = tiny_run
    for name in ("config.json", "history.json", "training_curves.png", "evaluation/scores.json",
                 "evaluation/scores.md", "evaluation/confusion_matrix.png"):  # fmt: skip
        assert (run_dir / name).is_file(), name
    for name in ("best", "last", "epoch=000", "epoch=001"):
        assert (run_dir / "checkpoints" / name / "model.safetensors").is_file(), name
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history["val_loss"]) == 2 and "val_bass_note_acc" in history
    labs = sorted((run_dir / "evaluation").glob("*.lab"))
    assert len(labs) == 1
    intervals, labels = mir_eval.io.load_labeled_intervals(str(labs[0]))
    mir_eval.chord.validate(labels, labels)  # every label parses
    assert intervals[0, 0] == 0.0
    scores = json.loads((run_dir / "evaluation" / "scores.json").read_text())
    assert 0.0 <= scores["pooled"]["majmin"] <= 1.0
    state = ckpt.read_state(run_dir / "checkpoints" / "best")
    stored = state["module_state"][CHECKPOINT_KEY]
    assert {"model_config", "features", "vocabulary", "decode", "window_frames"} <= set(stored)
    # The record a --resume after a kill during the evaluation reads (to score, not train on): the
    # checkpoint evaluated, relative to the run folder, and where its training ended.
    steps = ckpt.read_state(run_dir / "checkpoints" / "last")["progress"]["global_step"]
    trained = json.loads((run_dir / "trained.json").read_text())
    assert trained == {"checkpoint": "checkpoints/best", "global_step": steps, "num_epochs": 2}


def test_the_same_seed_gives_the_same_run(tiny_run):
    """Weights are drawn before the Trainer seeds at `fit`; the recipe seeds first, so a rerun (here in a
    process whose MLX generator has moved on) reproduces every loss and score."""
    root, run_dir = tiny_run
    mx.random.normal((3,))  # move the global generator on
    again = root / "again"
    args = [*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--run_dir", str(again)]
    assert chords.main(args) == 0
    first, second = (json.loads((d / "history.json").read_text()) for d in (run_dir, again))
    first.pop("time"), second.pop("time")
    assert first == second
    scores = [json.loads((d / "evaluation" / "scores.json").read_text()) for d in (run_dir, again)]
    assert scores[0]["pooled"] == scores[1]["pooled"] and scores[0]["per_song"] == scores[1]["per_song"]


def test_the_loss_weights_and_early_stopping_flags_reach_the_runs_loss_and_callback(
    tiny_run, tmp_path, monkeypatch
):
    """``--loss.*_weight`` weigh the heads' losses in the loss the run trains on (its history's train_loss is
    their weighted sum, each head's loss logged beside it), and ``--min_delta`` / ``--patience`` are those of
    the EarlyStopping the run is built with: no test would have failed had either been left at its default
    (the early-stopping tests stop at the same epoch with any min_delta on their tiny runs)."""
    built, make_shared_trainer = [], chords_train.make_shared_trainer

    def recorded(*args, **kwargs):
        made = make_shared_trainer(*args, **kwargs)
        built.append(made[1])  # (the Trainer, its EarlyStopping)
        return made

    root, _ = tiny_run
    weights = {"chord_type": 0.5, "root": 2.0, "bass": 0.75, "chord": 0.25}
    argv = [*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--run_dir", str(tmp_path / "run")]
    argv += ["--num_epochs", "1", "--model.chord_head", "true", "--min_delta", "0.37", "--patience", "4"]
    argv += [arg for name, weight in weights.items() for arg in (f"--loss.{name}_weight", str(weight))]
    monkeypatch.setattr(chords_train, "make_shared_trainer", recorded)
    assert chords.main(argv) == 0
    assert [(stop.min_delta, stop.patience) for stop in built] == [(0.37, 4)]
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    heads = {"chord_type": "chord_type", "root": "root", "bass": "bass_note", "chord": "chord"}
    weighted = sum(weight * history[f"train_{heads[name]}_loss"][0] for name, weight in weights.items())
    assert history["train_loss"][0] == pytest.approx(weighted, rel=1e-5)


def test_the_optimizer_schedule_loss_and_seed_flags_reach_the_runs_task_and_loaders(
    tiny_run, tmp_path, monkeypatch
):
    """``--learning_rate``, ``--weight_decay``, ``--scheduler``, ``--warmup_epochs``, ``--num_epochs`` (the
    schedule's length), ``--label_smoothing``, ``--seed`` and ``--batch_size`` are those of the task and the
    loaders the run trains with: any of them could have been left at its default (config.json still naming
    the flag's value) with every test green, as every other run uses the defaults."""
    tasks, loaders = [], []
    build_task, make_loaders = chords_train.build_task, chords_train.make_loaders

    def recorded_task(*args, **kwargs):
        tasks.append(build_task(*args, **kwargs))
        return tasks[-1]

    def recorded_loaders(*args, **kwargs):
        loaders.append(args)  # (splits, feature_fn, data, features, batch_size, seed)
        return make_loaders(*args, **kwargs)

    monkeypatch.setattr(chords_train, "build_task", recorded_task)
    monkeypatch.setattr(chords_train, "make_loaders", recorded_loaders)
    root, _ = tiny_run
    argv = [*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--run_dir", str(tmp_path / "run")]
    argv += ["--num_epochs", "3", "--learning_rate", "0.0123", "--weight_decay", "0.07"]
    argv += ["--scheduler", "onecycle", "--warmup_epochs", "0.5", "--label_smoothing", "0.05"]
    argv += ["--seed", "5", "--batch_size", "3"]
    assert chords.main(argv) == 0
    [task], [loader_args] = tasks, loaders
    settings = task.optim_settings
    assert (settings["learning_rate"], settings["weight_decay"]) == (0.0123, 0.07)
    assert (settings["scheduler"], settings["warmup_epochs"], settings["num_epochs"]) == ("onecycle", 0.5, 3)
    assert task.loss_fn.label_smoothing == 0.05
    assert loader_args[-2:] == (3, 5)  # the batch size, the seed of the windows, shifts and order


def test_a_warmup_longer_than_the_run_is_said_at_its_start(tiny_run, tmp_path, capsys):
    """``--warmup_epochs 4`` in a 2-epoch run was taken without a word: the cosine run trained at at most
    half of ``--learning_rate`` to its end. The run's start says so, and the history shows it."""
    argv = [*tiny_run_argv(tiny_run, tmp_path / "run"), "--warmup_epochs", "4"]
    assert chords.main(argv) == 0
    printed = capsys.readouterr()
    out = " ".join((printed.out + printed.err).split())
    assert (
        "note: --warmup_epochs 4 is longer than the run's 2 epochs: the learning rate rises to about 50% of "
        "--learning_rate 0.002 at the last step and never reaches it" in out
    )
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history["learning_rate"][-1] == pytest.approx(0.001, rel=0.05)


def test_a_diverging_run_stops_with_an_error_in_the_recipes_flags(tiny_run, tmp_path, capsys):
    """``--learning_rate 1e30``: the non-finite stop ended the command in a raw FloatingPointError traceback
    (exit status 1, an "unforeseen error"), advising the Trainer's gradient_clip_val and debug_lazy_eval."""
    argv = [*tiny_run_argv(tiny_run, tmp_path / "run"), "--learning_rate", "1e30", "--batch_size", "1"]
    argv += ["--data.window_frames", "16"]  # (18 steps an epoch: the stop comes before its validation)
    assert chords.main([*argv, "--num_epochs", "4"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    saved = tmp_path / "run" / "checkpoints" / "nonfinite"
    assert "Traceback" not in err and "gradient_clip_val" not in err
    assert re.search(r"error: training stopped: \d+ optimizer steps in a row had a non-finite loss", err)
    assert "Lower --learning_rate (this run's: 1e+30), set --gradient_clip (this run's: 1; 0 is off)" in err
    assert f"--init_from {saved} starts from them" in err and saved.is_dir()


def test_the_checkpoint_holds_the_resolved_config_and_the_run_config_repeats_the_run(tiny_run):
    root, run_dir = tiny_run
    written = json.loads((run_dir / "config.json").read_text())["config"]
    for name in ("best", "last"):
        assert ckpt.read_state(run_dir / "checkpoints" / name)["run_config"] == written
    # --config RUN/config.json alone (no other flag) resolves to the same settings and trains the same run.
    again = root / "from_config"
    assert chords.main(["--config", str(run_dir / "config.json"), "--run_dir", str(again)]) == 0
    assert ckpt.read_state(again / "checkpoints" / "best")["run_config"] == written
    first, second = (json.loads((d / "history.json").read_text()) for d in (run_dir, again))
    first.pop("time"), second.pop("time")
    assert first == second
    # A checkpoint's trainer_state.json reads as its config too.
    parser = chords._training_parser("chords", "", needs_data=False)
    state_file = run_dir / "checkpoints" / "best" / "trainer_state.json"
    assert chords._config_from_args(parser.parse_args(["--config", str(state_file)])).to_dict() == written


def test_predict_a_file_and_a_folder(tiny_run, tmp_path, capsys):
    root, run_dir = tiny_run
    songs = generate_demo_songs(tmp_path / "songs", n_songs=2, seed=7, song_seconds=6)
    capsys.readouterr()
    assert chords.main(["predict", "--checkpoint", str(run_dir), str(songs[0].audio_path)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed and all(len(line.split("\t")) == 3 for line in printed)
    out = tmp_path / "one.lab"
    assert chords.main(["predict", "--checkpoint", str(run_dir / "checkpoints" / "best"), str(songs[0].audio_path),
                        "-o", str(out), "--decode.method", "median"]) == 0  # fmt: skip
    segments = read_lab(out)
    assert segments[0].start == 0.0 and segments[-1].end == pytest.approx(
        sf.info(songs[0].audio_path).duration
    )
    out_dir = tmp_path / "labs"
    assert (
        chords.main(["predict", "--checkpoint", str(run_dir), str(tmp_path / "songs"), "-o", str(out_dir)])
        == 0
    )
    assert sorted(p.name for p in out_dir.glob("*.lab")) == ["song_000.lab", "song_001.lab"]
    # JAMS files carry the song's name and duration, not the output file's name.
    out_jams = tmp_path / "out.jams"
    assert (
        chords.main(["predict", "--checkpoint", str(run_dir), str(songs[0].audio_path), "-o", str(out_jams)])
        == 0
    )
    assert json.loads(out_jams.read_text())["file_metadata"]["title"] == "song_000"
    out_jamz = tmp_path / "out.jamz"  # gzipped JAMS, read back like .jams
    assert (
        chords.main(["predict", "--checkpoint", str(run_dir), str(songs[0].audio_path), "-o", str(out_jamz)])
        == 0
    )
    assert out_jamz.read_bytes()[:2] == b"\x1f\x8b" and read_annotation(out_jamz) == read_annotation(out_jams)
    jams_dir = tmp_path / "jams"
    argv = [
        "predict",
        "--checkpoint",
        str(run_dir),
        str(tmp_path / "songs"),
        "-o",
        str(jams_dir),
        "--format",
        "jams",
    ]
    assert chords.main(argv) == 0
    metadata = json.loads((jams_dir / "song_001.jams").read_text())["file_metadata"]
    assert metadata["title"] == "song_001"
    assert metadata["duration"] == pytest.approx(sf.info(songs[1].audio_path).duration)
    assert read_annotation(jams_dir / "song_001.jams")[-1].end == pytest.approx(metadata["duration"])


def test_evaluate_scores_a_folder(tiny_run, tmp_path, capsys):
    _, run_dir = tiny_run
    generate_demo_songs(tmp_path / "songs", n_songs=2, seed=8, song_seconds=6)
    capsys.readouterr()
    out = tmp_path / "eval"
    assert (
        chords.main(
            ["evaluate", "--checkpoint", str(run_dir), "--data", str(tmp_path / "songs"), "-o", str(out)]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "majmin" in text and "sevenths" in text
    assert (out / "scores.json").is_file() and len(list(out.glob("*.lab"))) == 2
    # A second evaluate into the same folder would replace the scores (and .lab files edited since): refused.
    (out / "song_000.lab").write_text("edited by hand\n")
    argv = ["evaluate", "--checkpoint", str(run_dir), "--data", str(tmp_path / "songs"), "-o", str(out)]
    assert chords.main(argv) == 2
    _one_error_line(capsys, "refusing to replace", "song_000.lab", "--overwrite")
    assert (out / "song_000.lab").read_text() == "edited by hand\n"
    assert chords.main([*argv, "--overwrite"]) == 0
    assert (out / "song_000.lab").read_text() != "edited by hand\n"


def test_evaluate_scores_against_the_chord_annotation_jams_annotation_names(tiny_run, tmp_path, capsys):
    """GuitarSet's JAMS hold two chord annotations: evaluate could only score against the first. A number past
    a file's annotations skips its song, naming the file."""
    _, run_dir = tiny_run
    songs = generate_demo_songs(tmp_path / "songs", n_songs=2, seed=8, song_seconds=6)
    for song in songs:
        segments = read_lab(song.annotation_path)
        song.annotation_path.unlink()
        annotation = {"namespace": "chord", "annotation_metadata": {"data_source": "performed chords"}}
        annotation["data"] = [{"time": s.start, "duration": s.duration, "value": s.label} for s in segments]
        jams = song.annotation_path.with_suffix(".jams")
        write_jams(jams, [type(segments[0])(0.0, segments[-1].end, "N")])  # annotation 0: the lead sheet's
        document = json.loads(jams.read_text())
        document["annotations"].append(annotation)
        jams.write_text(json.dumps(document))
    capsys.readouterr()
    argv = ["evaluate", "--checkpoint", str(run_dir), "--data", str(tmp_path / "songs")]
    assert chords.main([*argv, "--jams_annotation", "1"]) == 0
    assert "1: chord (data_source: performed chords) (used)" in capsys.readouterr().err
    assert chords.main([*argv, "--jams_annotation", "2"]) == 2
    err = capsys.readouterr().err
    assert "song_000.jams: chord annotation 2 (counted from 0) asked for, but the file holds 2" in err
    assert "error: no annotated songs" in err


def test_evaluate_pairs_annotations_kept_apart_by_folder_or_pairs_file(tiny_run, tmp_path, capsys):
    """Isophonics-like annotations in a tree of their own, named with underscores, or a CSV of pairs: evaluate
    found no annotated song in either layout."""
    _, run_dir = tiny_run
    songs = generate_demo_songs(tmp_path / "songs", n_songs=2, seed=8, song_seconds=6)
    rows = []
    for song in songs:
        moved = tmp_path / "chordlab" / "01_-_Album" / song.annotation_path.name.replace("song_", "SONG-")
        moved.parent.mkdir(parents=True, exist_ok=True)
        song.annotation_path.rename(moved)
        rows.append(f"songs/{song.audio_path.name},{moved.relative_to(tmp_path).as_posix()}")
    (tmp_path / "pairs.csv").write_text("\n".join(rows) + "\n")
    capsys.readouterr()
    argv = ["evaluate", "--checkpoint", str(run_dir), "--data", str(tmp_path / "songs")]
    for pairing in (["--annotations", str(tmp_path / "chordlab")], ["--pairs", str(tmp_path / "pairs.csv")]):
        assert chords.main([*argv, *pairing]) == 0, capsys.readouterr().err
        assert "2 songs" in capsys.readouterr().out


def test_evaluate_scores_the_songs_of_symlinked_folders_and_says_so(tiny_run, tmp_path, capsys):
    """evaluate scored only the songs outside the albums a library links in, and said nothing."""
    _, run_dir = tiny_run
    generate_demo_songs(tmp_path / "library" / "Album", n_songs=2, seed=8, song_seconds=6)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "Album").symlink_to(tmp_path / "library" / "Album")
    capsys.readouterr()
    assert chords.main(["evaluate", "--checkpoint", str(run_dir), "--data", str(tmp_path / "data")]) == 0
    captured = capsys.readouterr()
    assert "1 symlinked folder entered (Album)" in captured.err
    assert "2 songs" in captured.out


def test_a_demo_run_is_evaluated_again_from_its_folder_alone(tiny_run, tmp_path, capsys):
    """`evaluate --checkpoint RUN` required --data, and nothing recorded which of the cache's demo sets
    (hashed names) held a demo run's test songs: re-scoring an old run meant guessing the folder."""
    _, run_dir = tiny_run
    record = json.loads((run_dir / "config.json").read_text())
    test_set = Path(record["demo_test_set"])
    assert test_set.name.startswith("test-") and (test_set / "song_000.wav").is_file()
    # The run's own scores say what they scored: its best checkpoint, on that set.
    scored = json.loads((run_dir / "evaluation" / "scores.json").read_text())["scored"]
    assert scored["checkpoint"] == str((run_dir / "checkpoints" / "best").absolute())
    assert scored["data"] == str(test_set) and scored["epoch"] is not None
    capsys.readouterr()
    assert chords.main(["evaluate", "--checkpoint", str(run_dir), "-o", str(tmp_path / "again")]) == 0
    captured = capsys.readouterr()
    assert f"--data not given: scoring the held-out songs of {run_dir}: its demo test set, {test_set}" in (
        captured.err
    )
    again = json.loads((tmp_path / "again" / "scores.json").read_text())
    assert again["pooled"] == json.loads((run_dir / "evaluation" / "scores.json").read_text())["pooled"]
    # A pairs file of other songs without --data was refused by row, "not an audio file the scan of <the
    # demo test set> found", the missing --data said only in the line before.
    shutil.copytree(test_set, tmp_path / "mine")
    (tmp_path / "mine" / "pairs.csv").write_text("song_000.wav,song_000.lab\n")
    argv = ["evaluate", "--checkpoint", str(run_dir), "--pairs", str(tmp_path / "mine" / "pairs.csv")]
    assert chords.main(argv) == 2
    _one_error_line(capsys, "pairs.csv, line 1: ", "--data not given", "give --data DIR")
    # A run of an earlier version, which did not record it: the error says which --data to give.
    old = tmp_path / "old"
    shutil.copytree(run_dir, old)
    del record["demo_test_set"]
    (old / "config.json").write_text(json.dumps(record))
    assert chords.main(["evaluate", "--checkpoint", str(old / "checkpoints" / "best")]) == 2
    wanted = ("does not record where the run's demo test set is", "/test-v", "-train-seed")
    _one_error_line(capsys, "--data is needed", *wanted)


def test_a_resume_from_an_earlier_periodic_checkpoint_of_a_finished_run_trains_on(tiny_run, tmp_path, capsys):
    """trained.json names the step a run's training ended at: `--resume RUN/checkpoints/epoch=000` of a
    finished run (its evaluation gone) is at another step, and trains on from there. No test would have
    failed had that step been left unchecked: the resume then said "its training ended earlier" and scored
    the run's best without training the epoch asked for."""
    root, demo_run = tiny_run
    run_dir = tmp_path / "run"
    shutil.copytree(demo_run, run_dir)
    shutil.rmtree(run_dir / "evaluation")
    earlier = run_dir / "checkpoints" / "epoch=000"
    assert ckpt.read_state(earlier)["progress"]["global_step"] == 2
    assert json.loads((run_dir / "trained.json").read_text())["global_step"] == 4
    argv = [*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--run_dir", str(run_dir)]
    capsys.readouterr()
    assert chords.main([*argv, "--resume", str(earlier)]) == 0
    err = capsys.readouterr().err
    assert "its training ended earlier" not in err and "after resuming at epoch 1 (step 2)" in err, err
    scored = json.loads((run_dir / "evaluation" / "scores.json").read_text())["scored"]
    best = ckpt.read_state(run_dir / "checkpoints" / "best")["progress"]
    assert (Path(scored["checkpoint"]).name, scored["step"]) == ("best", best["global_step"])


def test_plots_off_a_resumed_run_writes_no_figure_keeps_none_of_its_first_part_and_ends_finished(
    tiny_run, tmp_path, capsys, monkeypatch
):
    """AUDIOTRAIN_PLOTS=0: a resumed run writes its history, scores and .lab files as before and no PNG; its
    first part's training_curves.png and confusion_matrix.png (of the older history and weights) go, the
    summary names none, and the log says once why. Resumed again, the finished run is refused as one whose
    evaluation ended (not scored again for want of the confusion matrix an evaluation used to end with)."""
    root, demo_run = tiny_run
    run_dir = tmp_path / "run"
    shutil.copytree(demo_run, run_dir)
    monkeypatch.setenv("AUDIOTRAIN_PLOTS", "Off")
    last = run_dir / "checkpoints" / "last"
    argv = [*tiny_run_argv(tiny_run, run_dir), "--num_epochs", "3", "--resume", str(last)]
    capsys.readouterr()
    assert chords.main(argv) == 0
    out, err = capsys.readouterr()
    assert err.count("plots not written (AUDIOTRAIN_PLOTS=Off)") == 1, err
    assert sorted(run_dir.rglob("*.png")) == [] and ".png" not in out, out
    assert len(json.loads((run_dir / "history.json").read_text())["val_loss"]) == 3
    scores = run_dir / "evaluation" / "scores.json"
    best = ckpt.read_state(run_dir / "checkpoints" / "best")["progress"]["global_step"]
    assert json.loads(scores.read_text())["scored"]["step"] == best
    assert len(list((run_dir / "evaluation").glob("*.lab"))) == 1
    scored_at = scores.stat().st_mtime_ns
    assert chords.main(argv) == 2
    assert "leaves none to train" in capsys.readouterr().err
    assert scores.stat().st_mtime_ns == scored_at


def test_plots_off_a_run_in_a_child_process_does_not_import_matplotlib(tiny_run, tmp_path):
    """What a sweep on a headless cluster asks for: a chord run (train, evaluate) without its figures does
    not import matplotlib (seconds per run) and writes no PNG."""
    root, _ = tiny_run
    code = (
        "import runpy, sys\n"
        "try:\n    runpy.run_module('audiotrain.recipes.chords', run_name='__main__', alter_sys=True)\n"
        "finally:\n    print(sorted(m for m in sys.modules if m.partition('.')[0] == 'matplotlib'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *TINY_FLAGS, "--num_epochs", "1", "--processes", "1",
         "--data.cache_dir", str(root / "cache"), "--run_dir", str(tmp_path / "run")],
        env={**os.environ, "AUDIOTRAIN_PLOTS": "0"}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[-1] == "[]", done.stdout
    assert sorted((tmp_path / "run").rglob("*.png")) == []
    assert (tmp_path / "run" / "evaluation" / "scores.json").is_file()


def test_a_bad_audiotrain_plots_value_is_refused_before_the_data_is_read(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AUDIOTRAIN_PLOTS", "maybe")
    monkeypatch.setattr(chords_train, "demo_splits", lambda *a, **k: pytest.fail("read the data first"))
    assert chords.main([*TINY_FLAGS, "--run_dir", str(tmp_path / "run")]) == 2
    assert "error: AUDIOTRAIN_PLOTS='maybe' is neither on (1, true" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="AUDIOTRAIN_PLOTS='maybe'"):  # (the recipe's Python API)
        chords_train.run_training(TrainingConfig(), tmp_path / "api")
    assert not (tmp_path / "api").exists()


def test_a_run_killed_between_last_and_its_periodic_checkpoint_saves_that_checkpoint_when_resumed(
    tiny_run, tmp_path
):
    """At an epoch end `last` is written before `epoch=NNN`: a SIGKILL between the two (seen in chaos
    trials) left `last` at the end of epoch 1 and no `epoch=001`, and `--resume RUN/checkpoints/last` went on
    from epoch 2, so the run never had the `epoch=001` an uninterrupted run keeps. The resume saves it."""
    root, demo_run = tiny_run
    run_dir = tmp_path / "run"
    shutil.copytree(demo_run, run_dir)
    checkpoints = run_dir / "checkpoints"
    for name in ("evaluation", "checkpoints/epoch=001"):  # (killed before they were written)
        shutil.rmtree(run_dir / name)
    for name in ("trained.json", "history.json", "training_curves.png"):
        (run_dir / name).unlink()
    resume = ["--resume", str(checkpoints / "last"), "--num_epochs", "3"]
    assert chords.main([*tiny_run_argv(tiny_run, run_dir), *resume]) == 0
    names = sorted(p.name for p in checkpoints.iterdir() if not p.name.startswith("."))
    assert names == ["best", "epoch=000", "epoch=001", "epoch=002", "last"]
    assert ckpt.read_state(checkpoints / "epoch=001")["progress"]["global_step"] == 4


def test_a_copied_run_folder_resumed_warns_of_no_checkpoint_saved_after_the_one_resumed(
    tiny_run, tmp_path, recwarn
):
    """A run folder copied (cp -a, another disk) and resumed from its last warned 'holds checkpoints saved
    after last, the one resumed (epoch=000)', though epoch=000 was saved before it: the folder's first
    ModelCheckpoint checked it before the periodic one had taken over its moved state, which tracks it."""
    root, demo_run = tiny_run
    run_dir = tmp_path / "copied"
    shutil.copytree(demo_run, run_dir)
    shutil.rmtree(run_dir / "evaluation")
    (run_dir / "trained.json").unlink()
    resume = ["--resume", str(run_dir / "checkpoints" / "last"), "--num_epochs", "3"]
    assert chords.main([*tiny_run_argv(tiny_run, run_dir), *resume]) == 0
    said = [str(w.message) for w in recwarn]
    assert not [text for text in said if "saved after" in text], said


def test_save_keep_keeps_the_newest_periodic_checkpoints_and_best_and_last(tiny_run, tmp_path):
    """--save_every kept every periodic checkpoint, each with its optimizer state (two thirds of it), for as
    long as the run trained: disk use without a bound. --save_keep N keeps the newest N."""
    run_dir = tmp_path / "run"
    argv = [*tiny_run_argv(tiny_run, run_dir), "--num_epochs", "3", "--save_keep", "1"]
    assert chords.main(argv) == 0
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best", "epoch=002", "last"]
    assert json.loads((run_dir / "config.json").read_text())["config"]["save_keep"] == 1


@pytest.mark.parametrize("command", [[], ["cv", "--folds", "2"]])
def test_save_keep_without_periodic_checkpoints_is_refused_naming_save_every(command, tmp_path, capsys):
    """`--preset quick_test --save_keep 3` (the preset's save_every is 0) trained, kept best and last alone,
    exit 0, and recorded save_keep 3 in config.json: the flag did nothing."""
    run_dir = tmp_path / "run"
    assert (
        chords.main([*command, "--preset", "quick_test", "--save_keep", "3", "--run_dir", str(run_dir)]) == 2
    )
    assert "--save_keep 3 keeps the newest of the --save_every checkpoints, and save_every is 0" in (
        capsys.readouterr().err
    )
    assert not run_dir.exists()


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (
            ["--model.chord_head", "false", "--loss.chord_weight", "2"],
            "--loss.chord_weight 2 weighs the joint chord head's loss, and model.chord_head is false",
        ),
        (
            ["--model.chord_head", "false", "--decode.chord_head_weight", "0.5"],
            "--decode.chord_head_weight 0.5 weighs the joint chord head in decoding, and model.chord_head is "
            "false (no such head): pass --model.chord_head true too, or leave out --decode.chord_head_weight",
        ),
        (
            ["--features.bass_view_bins", "0", "--features.bass_view_filter_scale", "0.3"],
            "--features.bass_view_filter_scale 0.3 sets the filters of the bass view, and "
            "features.bass_view_bins is 0 (no bass view)",
        ),
    ],
)
def test_a_flag_the_other_settings_leave_unused_is_refused(argv, fragment, tmp_path, monkeypatch, capsys):
    """Each of these trained a model without what the flag sets, exit 0, and recorded it in config.json."""
    monkeypatch.setattr(chords, "run_training", lambda *a, **k: pytest.fail("ran with an unused flag"))
    run_dir = tmp_path / "run"
    assert chords.main([*argv, "--run_dir", str(run_dir)]) == 2
    _one_error_line(capsys, fragment)
    assert not run_dir.exists()
    # The same flag where the model has what it sets is taken.
    assert chords.main([*argv[2:], "--print_config"]) == 0


def test_predict_refuses_a_chord_head_weight_for_a_model_without_the_head(tiny_run, tmp_path, capsys):
    """``predict --decode.chord_head_weight 0.3`` with a model trained with --model.chord_head false wrote
    the same labels as without it, exit 0: the flag weighed a head the model has not."""
    run_dir = tmp_path / "headless"
    assert chords.main([*tiny_run_argv(tiny_run, run_dir), "--model.chord_head", "false"]) == 0
    song = generate_demo_songs(tmp_path / "songs", n_songs=1, seed=3, song_seconds=4)[0].audio_path
    capsys.readouterr()
    argv = ["predict", "--checkpoint", str(run_dir), str(song), "--tta", "0", "-o", str(tmp_path / "a.lab")]
    assert chords.main([*argv, "--decode.chord_head_weight", "0.3"]) == 2
    _one_error_line(
        capsys, "--decode.chord_head_weight 0.3 weighs the joint chord head", "trained without one"
    )
    assert not (tmp_path / "a.lab").exists()
    assert chords.main(argv) == 0


def test_save_keep_counts_the_periodic_checkpoints_saved_before_a_resume(tiny_run, tmp_path):
    """Each --resume kept --save_keep more: the count covered only what the resumed process saved. A
    checkpoint of the user's in the folder, and best/last, are never pruned."""
    run_dir = tmp_path / "run"
    argv = [*tiny_run_argv(tiny_run, run_dir), "--save_keep", "2"]
    assert chords.main([*argv, "--num_epochs", "3"]) == 0
    checkpoints = run_dir / "checkpoints"
    shutil.copytree(checkpoints / "epoch=001", checkpoints / "keep_for_paper")
    resume = ["--resume", str(checkpoints / "last")]
    assert chords.main([*argv, *resume, "--num_epochs", "4"]) == 0
    assert chords.main([*argv, *resume, "--num_epochs", "5"]) == 0
    names = sorted(p.name for p in checkpoints.iterdir() if not p.name.startswith("."))
    assert names == ["best", "epoch=003", "epoch=004", "keep_for_paper", "last"]


def test_save_keep_after_a_resume_from_an_earlier_checkpoint_prunes_only_its_own_epochs_checkpoints(
    tiny_run, tmp_path
):
    """A resume from epoch=000 of a run that reached epoch=002 saves epoch=001-v1 beside epoch=001: pruning
    to --save_keep 2 keeps those two and epoch=002 (this run has not saved over it yet), and neither removes
    nor counts a folder under a periodic name that is not a checkpoint."""
    run_dir = tmp_path / "run"
    argv = [*tiny_run_argv(tiny_run, run_dir), "--save_keep", "3"]
    assert chords.main([*argv, "--num_epochs", "3"]) == 0
    checkpoints = run_dir / "checkpoints"
    shutil.rmtree(run_dir / "evaluation")
    (checkpoints / "epoch=001-v3").mkdir()  # (the user's, named as the recipe names its own)
    (checkpoints / "epoch=001-v3" / "notes.txt").write_text("mine")
    argv = [*tiny_run_argv(tiny_run, run_dir), "--save_keep", "2", "--num_epochs", "2"]
    assert chords.main([*argv, "--resume", str(checkpoints / "epoch=000")]) == 0
    names = sorted(p.name for p in checkpoints.iterdir() if not p.name.startswith("."))
    assert names == ["best", "epoch=001", "epoch=001-v1", "epoch=001-v3", "epoch=002", "last"]
    assert (checkpoints / "epoch=001-v3" / "notes.txt").read_text() == "mine"


def test_the_same_command_again_on_a_finished_run_does_not_offer_a_resume_that_is_refused(tiny_run, capsys):
    """The command of a run that finished, given again (a job script rerun after its SIGKILL came too late),
    was told '... or --resume RUN/checkpoints/last to continue it'; that resume was then refused, no epochs
    being left. The refusal says the run finished and that a resume needs more epochs."""
    root, run_dir = tiny_run
    capsys.readouterr()
    argv = [*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--run_dir", str(run_dir)]
    assert chords.main(argv) == 2
    _one_error_line(
        capsys, f"--run_dir {run_dir} already holds files", "finished", "--overwrite", "more epochs"
    )
    assert chords.main([*argv, "--resume", str(run_dir / "checkpoints" / "last")]) == 2
    _one_error_line(capsys, "leaves none to train", "raise --num_epochs")


def test_a_finished_run_folder_is_refused_and_overwrite_replaces_only_its_outputs(tiny_run, tmp_path, capsys):
    root, run_dir = tiny_run
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    capsys.readouterr()
    args = [*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--run_dir", str(run_dir)]
    assert chords.main(args) == 2
    _one_error_line(capsys, f"--run_dir {run_dir} already holds files", "--overwrite", "--resume")
    assert (
        chords.main(
            [
                *TINY_FLAGS,
                "--run_dir",
                str(tmp_path / "new"),
                "--checkpoint_dir",
                str(run_dir / "checkpoints"),
            ]
        )
        == 2
    )
    _one_error_line(capsys, f"--checkpoint_dir {run_dir / 'checkpoints'} is outside the run folder")
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before
    assert not (tmp_path / "new").exists()
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    (copy / "notes.txt").write_text("mine")
    # The user's own files inside the run's folders: notes beside the scores, a checkpoint copied to keep,
    # a file beside a logger's run (its events, as an earlier csv logger left them).
    (copy / "evaluation" / "my_analysis.txt").write_text("notes")
    shutil.copytree(copy / "checkpoints" / "best", copy / "checkpoints" / "keep_for_paper")
    (copy / "csv" / "version_0").mkdir(parents=True)
    (copy / "csv" / "version_0" / "metrics.csv").write_text("step\n")
    (copy / "csv" / "my_export.csv").write_text("x")
    # An earlier run with --checkpoint_dir ckpts (recorded in its config.json): its checkpoints go too.
    (copy / "ckpts").mkdir()
    (copy / "checkpoints" / "epoch=000").rename(copy / "ckpts" / "epoch=000")
    record = json.loads((copy / "config.json").read_text())
    record["config"]["checkpoint_dir"] = "ckpts"
    (copy / "config.json").write_text(json.dumps(record))
    assert (
        chords.main(
            [*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--run_dir", str(copy), "--overwrite"]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "--overwrite: removed the previous run's" in err and "ckpts" in err
    kept = "checkpoints/keep_for_paper, evaluation/my_analysis.txt, csv/my_export.csv"
    assert f"--overwrite: kept what the previous run did not write in {copy}: {kept}" in err
    assert (copy / "notes.txt").read_text() == "mine"
    assert (copy / "evaluation" / "my_analysis.txt").read_text() == "notes"
    assert (copy / "checkpoints" / "keep_for_paper" / "model.safetensors").is_file()
    assert (copy / "csv" / "my_export.csv").read_text() == "x" and not (copy / "csv" / "version_0").exists()
    assert not (copy / "ckpts").exists()
    assert (copy / "evaluation" / "scores.json").is_file() and (copy / "checkpoints" / "best").is_dir()


def test_overwrite_names_the_default_checkpoint_folder_and_the_users_files_in_it_once(
    tiny_run, tmp_path, capsys
):
    # The default checkpoint_dir, recorded in config.json, was walked a second time beside RUN_OUTPUTS'.
    _, run_dir = tiny_run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    shutil.copytree(copy / "checkpoints" / "best", copy / "checkpoints" / "keep_for_paper")
    capsys.readouterr()
    assert chords.main([*tiny_run_argv(tiny_run, copy), "--overwrite"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("--overwrite:")]
    removed = next(line for line in lines if "removed the previous run's" in line)
    assert removed.count("checkpoints") == 1, removed
    assert (
        f"--overwrite: kept what the previous run did not write in {copy}: checkpoints/keep_for_paper"
        in lines
    )
    assert (copy / "checkpoints" / "keep_for_paper" / "model.safetensors").is_file()


def test_overwrite_refuses_a_transcription_of_the_users_in_the_earlier_runs_evaluation(
    tiny_run, tmp_path, capsys
):
    """A .lab of the user's in the earlier run's evaluation/ (its scores.json does not list it) would be kept
    by --overwrite, then replaced by the new run's transcription of a test song of that name."""
    _, run_dir = tiny_run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    (copy / "evaluation" / "my_take.lab").write_text("0.0 1.0 C:maj\n")
    before = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert chords.main([*tiny_run_argv(tiny_run, copy), "--overwrite"]) == 2
    _one_error_line(capsys, "evaluation/my_take.lab in", "is not the earlier run's", "nothing was removed")
    assert {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()} == before


def test_overwrite_is_refused_while_a_run_whose_fit_ended_still_scores_its_held_out_songs(
    tiny_run, tmp_path, monkeypatch
):
    # Run A's fit has ended (its lock on checkpoints/ is released) and A scores its held-out songs, which
    # takes minutes on real songs; B (another process) is started into A's run folder with --overwrite.
    # B removed A's checkpoints, and A then wrote its scores into B's run.
    root, _ = tiny_run
    run_dir = tmp_path / "run"
    overwrite_by_another_process = (
        "import sys; from pathlib import Path; from audiotrain.recipes._run import clear_run_outputs; "
        "clear_run_outputs(Path(sys.argv[1]), ['config.json', 'checkpoints', 'history.json'])"
    )
    tried = []
    scoring = chords_train._evaluate_held_out

    def scoring_while_b_overwrites(*args, **kwargs):
        tried.append(
            subprocess.run(
                [sys.executable, "-c", overwrite_by_another_process, str(run_dir)],
                capture_output=True,
                text=True,
            )
        )
        return scoring(*args, **kwargs)

    monkeypatch.setattr(chords_train, "_evaluate_held_out", scoring_while_b_overwrites)
    assert chords.main([*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--run_dir", str(run_dir)]) == 0
    assert tried[0].returncode != 0, tried[0].stdout
    assert re.search(
        rf"--overwrite: {run_dir} is in use: the run of process {os.getpid()} on host .* is still running "
        r"there \(training, evaluating or exporting\); nothing was removed",
        tried[0].stderr,
    ), tried[0].stderr
    assert (run_dir / "checkpoints" / "best").is_dir() and (run_dir / "evaluation" / "scores.json").is_file()
    # The claim ends with the command: nothing of it is left, and --overwrite may replace the run now.
    assert not (run_dir / ckpt.CLAIM_FILE).exists()
    assert subprocess.run([sys.executable, "-c", overwrite_by_another_process, str(run_dir)]).returncode == 0


def test_temporary_plot_files_of_a_killed_run_go_with_the_resume_that_finishes_it_and_with_overwrite(
    tiny_run, tmp_path
):
    # Run A was killed (SIGKILL) while writing its confusion matrix (its evaluation unfinished), and in an
    # earlier life while writing training_curves.png: each write left its hidden temporary file.
    root, run_dir = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "evaluation" / "confusion_matrix.png").unlink()
    killed_plots = [copy / f".tmp-{'a' * 32}.png", copy / "evaluation" / f".tmp-{'b' * 32}.png"]
    for path in killed_plots:
        path.write_bytes(b"")
    mine = [copy / ".tmp-notes.png", copy / "evaluation" / ".tmp-keep.txt"]  # not the writer's names
    for path in mine:
        path.write_text("mine")
    flags = [*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--run_dir", str(copy)]
    assert chords.main([*flags, "--resume", str(copy / "checkpoints" / "last")]) == 0
    assert (copy / "evaluation" / "confusion_matrix.png").is_file()
    assert not any(path.exists() for path in killed_plots)
    assert all(path.read_text() == "mine" for path in mine)
    # A run folder's killed plot write is gone with --overwrite too.
    killed_plots[0].write_bytes(b"")
    clear_run_outputs(copy, chords_train.RUN_OUTPUTS, print)
    assert not killed_plots[0].exists() and mine[0].read_text() == "mine"


def test_a_run_killed_in_its_evaluation_resumed_with_more_epochs_trains_on(tiny_run, tmp_path, capsys):
    """Its trained.json says training ended after --num_epochs 2: a resume with --num_epochs 3 is a request
    to train further, not to score the checkpoint of 2 epochs that the record names."""
    root, run_dir = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "evaluation" / "confusion_matrix.png").unlink()  # killed before its evaluation's last write
    flags = [*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--run_dir", str(copy)]
    capsys.readouterr()
    assert chords.main([*flags, "--num_epochs", "3", "--resume", str(copy / "checkpoints" / "last")]) == 0
    err = capsys.readouterr().err
    assert "its training ended earlier" not in err and "trained to epoch 3: " in err, err
    assert json.loads((copy / "history.json").read_text())["epoch"] == [0, 1, 2]


def test_a_resume_in_the_count_of_processes_it_was_trained_in_names_no_change_of_processes(
    tiny_run, tmp_path, capsys
):
    """A run of `processes` 0 (one per core; under `audiotrain launch` the record holds the 0 its user never
    set), resumed with --processes giving the count it trained in, said "processes 0 -> 1" among the changed
    settings, though the processes did not change."""
    root, run_dir = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    flags = [*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--run_dir", str(copy), "--processes", "1"]
    capsys.readouterr()
    assert chords.main([*flags, "--num_epochs", "3", "--resume", str(copy / "checkpoints" / "last")]) == 0
    err = capsys.readouterr().err
    changed = next(line for line in err.splitlines() if "settings changed since its run" in line)
    assert "num_epochs 2 -> 3" in changed and "processes" not in changed, changed


def test_train_on_a_folder_and_resume(tiny_run, tmp_path, capsys):
    root, _ = tiny_run
    data = tmp_path / "songs"
    generate_demo_songs(data, n_songs=4, seed=9, song_seconds=6)
    (data / "orphan.wav").write_bytes(
        (data / "song_000.wav").read_bytes()
    )  # audio without annotation: listed
    run_dir, resumed = tmp_path / "run", tmp_path / "resumed"
    flags = _folder_run_flags(tiny_run, data)
    assert chords.main([*flags, "--run_dir", str(run_dir)]) == 0
    config = json.loads((run_dir / "config.json").read_text())
    assert sum(len(v) for v in config["songs"].values()) == 4  # the orphan is not a song
    # Its held-out songs are some of the folder's (config["songs"]), not a demo test set of their own.
    assert "demo_test_set" not in config
    last = str(run_dir / "checkpoints" / "last")
    assert chords.main([*flags, "--run_dir", str(resumed), "--num_epochs", "3", "--resume", last]) == 0
    history = json.loads((resumed / "history.json").read_text())
    assert history["epoch"] == [0, 1, 2]
    # Other features than the checkpoint was trained on: refused, naming the setting.
    capsys.readouterr()
    other = [*flags, "--run_dir", str(tmp_path / "other"), "--num_epochs", "3", "--resume", last]
    assert chords.main([*other, "--features.tuning_correction", "false"]) == 2
    err = capsys.readouterr().err
    assert "features.tuning_correction (True there, False here)" in err, err
    assert not (tmp_path / "other").exists()  # refused before any run folder is written
    # The bass view changes the model's input width too; it is named as the flag a user can pass.
    assert chords.main([*other, "--features.bass_view_bins", "0"]) == 2
    err = capsys.readouterr().err
    assert "features.bass_view_bins (108 there, 0 here)" in err and "model." not in err, err
    # So is another model: each setting named as its flag (it used to be found when the weights loaded,
    # after the run folder was written, and printed as two whole configs).
    assert chords.main([*other, "--model.d_model", "64", "--model.dropout", "0.2"]) == 2
    err = capsys.readouterr().err
    assert "model.d_model (32 there, 64 here), model.dropout (0.0 there, 0.2 here)" in err, err
    assert "Traceback" not in err and not (tmp_path / "other").exists()
    # A feature setting this version does not know: named, without a traceback.
    state_file = Path(last) / ckpt.STATE_FILE
    state = json.loads(state_file.read_text())
    state["module_state"][CHECKPOINT_KEY]["features"]["future_setting"] = 1
    state_file.write_text(json.dumps(state))
    assert chords.main(other) == 2
    err = capsys.readouterr().err
    assert "unknown feature setting ['future_setting']" in err and "Traceback" not in err, err
    del state["module_state"][CHECKPOINT_KEY]["features"]["future_setting"]
    state_file.write_text(json.dumps(state))
    # One song renamed: a song it trained on is gone, named before anything is trained.
    for suffix in (".wav", ".lab"):
        (data / f"song_002{suffix}").rename(data / f"renamed{suffix}")
    capsys.readouterr()
    again = tmp_path / "again"
    assert chords.main([*flags, "--run_dir", str(again), "--num_epochs", "3", "--resume", last]) == 2
    err = capsys.readouterr().err
    assert "cannot resume from" in err and "(gone since: 'song_002'; new: 'renamed')" in err, err
    assert "new run folder" in err and "restore the data" in err
    assert "Traceback" not in err and not again.exists()


def test_a_run_folder_inside_the_data_folder_is_left_out_of_its_scan_and_named(tiny_run, tmp_path, capsys):
    """A --run_dir inside --data: its resume listed the run's own evaluation/*.lab predictions as the user's
    "annotations without an audio file". The run folder is left out of the scan (fresh run and resume alike,
    so both take the same songs) and named once in the scan report, on the screen and in data_report.txt."""
    data = tmp_path / "songs"
    generate_demo_songs(data, n_songs=4, seed=9, song_seconds=6)
    run_dir = data / "run"
    flags = [*_folder_run_flags(tiny_run, data), "--run_dir", str(run_dir)]
    capsys.readouterr()
    assert chords.main(flags) == 0
    fresh = capsys.readouterr().err
    assert sorted((run_dir / "evaluation").glob("*.lab")), "the run wrote no predictions to be scanned"
    assert chords.main([*flags, "--num_epochs", "3", "--resume", str(run_dir / "checkpoints" / "last")]) == 0
    resumed = capsys.readouterr().err
    left_out = f"{run_dir}: this command's own output folder, left out of the scan"
    for err in (resumed, fresh):
        assert "without an audio file" not in err and "4 annotated songs" in err, err
        assert err.count(left_out) == 1, err
    assert left_out in (run_dir / "data_report.txt").read_text()
    assert json.loads((run_dir / "history.json").read_text())["epoch"] == [0, 1, 2]


def test_a_resume_without_data_names_the_folder_its_run_trained_on(tiny_run, folder_runs, capsys):
    """`train --resume RUN/checkpoints/last` without --data said only "no data folder: pass --data DIR",
    though the checkpoint records the folder its run trained on: the error now names it, to pass as --data."""
    data, run_dir = folder_runs.data, folder_runs.run  # (only read: the resume is refused)
    capsys.readouterr()
    assert chords.main(["train", "--resume", str(run_dir / "checkpoints" / "last"), "--num_epochs", "3"]) == 2
    err = capsys.readouterr().err
    assert "no data folder" in err and f"its run trained on {data}: pass --data {data}" in err, err
    assert "Traceback" not in err
    # A demo run's checkpoint, resumed with train: the demo command resumes it.
    demo_last = tiny_run[1] / "checkpoints" / "last"
    assert chords.main(["train", "--resume", str(demo_last), "--num_epochs", "3"]) == 2
    err = capsys.readouterr().err
    demo_resume = "python -m audiotrain.recipes.chords --resume"
    assert f"its run trained on the demo songs: resume it with {demo_resume}" in err, err


def _folder_run_flags(tiny_run, data: Path) -> list[str]:
    root, _ = tiny_run
    return [
        "train",
        "--data",
        str(data),
        *TINY_FLAGS,
        "--data.cache_dir",
        str(root / "cache"),
        "--save_every",
        "0",
    ]


@pytest.fixture(scope="module")
def folder_runs(tmp_path_factory):
    """Runs on a data folder of 4 demo songs (seed 9, 6 s) that the tests below share and only read: `run`
    (the 2 epochs of _folder_run_flags) and `straight` (3 epochs uninterrupted, what a resumed run on the same
    songs must end as). A test that adds or removes songs makes its own folder of the same songs.
    Built once for both xdist workers, with a feature cache of its own (not a worker's tiny_run cache, which
    the other worker's runs would then write in beside that worker's tests)."""
    from types import SimpleNamespace

    def build(root: Path) -> None:
        data = root / "songs"
        generate_demo_songs(data, n_songs=4, seed=9, song_seconds=6)
        flags = _folder_run_flags((root, None), data)
        assert chords.main([*flags, "--run_dir", str(root / "run")]) == 0
        assert chords.main([*flags, "--run_dir", str(root / "straight"), "--num_epochs", "3"]) == 0

    root, _ = built_once(tmp_path_factory, "folder_runs", build)
    return SimpleNamespace(data=root / "songs", run=root / "run", straight=root / "straight")


def _trained_the_same(resumed: Path, straight: Path) -> None:
    """The resumed run's history (the epochs before the resume too) is the uninterrupted run's."""
    a, b = (json.loads((run / "history.json").read_text()) for run in (resumed, straight))
    for name in ("epoch", "step", "train_loss", "val_loss"):
        assert a[name] == b[name], name


def test_a_resume_goes_on_with_its_own_songs_after_songs_are_added_to_the_folder(
    tiny_run, folder_runs, tmp_path, capsys
):
    """It was refused: one song more in the data folder (and every run keeps adding some) and no run on it
    could be resumed. It goes on with its own songs, exactly, and says what it leaves out; a song it trained
    on that is gone is still refused, named."""
    data = tmp_path / "songs"
    generate_demo_songs(data, n_songs=4, seed=9, song_seconds=6)
    flags = _folder_run_flags(tiny_run, data)
    # (the uninterrupted run of these songs, shared: it trained on a folder of the same 4 songs)
    run_dir, straight, resumed = tmp_path / "run", folder_runs.straight, tmp_path / "resumed"
    assert chords.main([*flags, "--run_dir", str(run_dir)]) == 0
    for suffix in (".wav", ".lab"):
        (data / f"added{suffix}").write_bytes((data / f"song_001{suffix}").read_bytes())
    last = run_dir / "checkpoints" / "last"
    capsys.readouterr()
    assert chords.main([*flags, "--run_dir", str(resumed), "--num_epochs", "3", "--resume", str(last)]) == 0
    out = capsys.readouterr().err
    assert f"1 song added to {data} since is not used" in out and f"--init_from {last}" in out, out
    assert "4 of the 5 songs in" in out
    assert (
        json.loads((resumed / "config.json").read_text())["songs"]
        == json.loads((run_dir / "config.json").read_text())["songs"]
    )
    assert "not used by it" in (resumed / "data_report.txt").read_text()
    _trained_the_same(resumed, straight)
    # It keeps its parts: a flag that would split the songs otherwise (a fraction, or a grouping that would
    # put them in other parts) is refused; it would be taken, and ignored.
    again = tmp_path / "again"
    for flag, there, here in (("val_fraction", "0.15", "0.3"), ("split_by", "song", "folder")):
        resume = [*flags, "--run_dir", str(again), "--resume", str(last), f"--data.{flag}", here]
        assert chords.main(resume) == 2
        err = capsys.readouterr().err
        quoted = (there, here) if flag == "val_fraction" else (repr(there), repr(here))
        assert f"data.{flag} ({quoted[0]} there, {quoted[1]} here) would not change" in err, err
        assert f"Resume with --data.{flag} {there}" in err and not again.exists()
    # A song it trained on deleted: refused, naming it, before anything is written.
    for suffix in (".wav", ".lab"):
        (data / f"song_003{suffix}").unlink()
    assert chords.main([*flags, "--run_dir", str(again), "--num_epochs", "3", "--resume", str(last)]) == 2
    err = capsys.readouterr().err
    # (said of the run's songs, as one gone may be a validation or test song, which it did not train on)
    assert f"1 of the 4 songs of its run is not among the songs of the data folder {data}" in err, err
    assert "gone since: 'song_003'" in err and "--init_from" in err and "Traceback" not in err
    assert not again.exists()


def test_a_run_split_by_an_older_version_resumes_on_its_own_parts(tiny_run, tmp_path, monkeypatch, capsys):
    """Runs from before each song's part was kept as songs come and go (a shuffle of all the songs) were
    refused: this version splits the folder otherwise. Their run folder lists the parts: it goes on with them,
    exactly. A checkpoint without that list (outside its run folder) is still compared, and refused."""
    from audiotrain.datasets.chord_songs import split_songs_shuffled
    from audiotrain.recipes.chords import data as chords_data

    data = tmp_path / "songs"
    generate_demo_songs(data, n_songs=5, seed=9, song_seconds=6)
    flags = _folder_run_flags(tiny_run, data)
    old, straight, resumed = tmp_path / "old", tmp_path / "straight", tmp_path / "resumed"
    with monkeypatch.context() as patch:  # the split of the versions before
        patch.setattr(
            chords_data,
            "split_songs",
            lambda songs, val, test, seed, by, pattern: split_songs_shuffled(songs, val, test, seed),
        )
        assert chords.main([*flags, "--run_dir", str(old)]) == 0
        assert chords.main([*flags, "--run_dir", str(straight), "--num_epochs", "3"]) == 0
    today, _ = chords_data.folder_splits(ChordDataConfig(data_dir=str(data)), TrainingConfig().seed)
    recorded = json.loads((old / "config.json").read_text())["songs"]
    assert recorded != {part: [s.name for s in getattr(today, part)] for part in recorded}  # (another split)
    last = old / "checkpoints" / "last"
    capsys.readouterr()
    assert chords.main([*flags, "--run_dir", str(resumed), "--num_epochs", "3", "--resume", str(last)]) == 0
    out = capsys.readouterr().err
    assert "resuming on the 5 songs its run trained on, in the parts it recorded" in out, out
    assert json.loads((resumed / "config.json").read_text())["songs"] == recorded
    _trained_the_same(resumed, straight)
    # Outside its run folder a checkpoint of a version before the names were recorded holds only its songs'
    # counts and digests: split again, refused (a checkpoint of this version goes on, tested below).
    alone = tmp_path / "copied" / "last"
    shutil.copytree(last, alone)
    _edit_chord_state(alone, lambda stored: stored["songs"].pop("names"))
    again = tmp_path / "again"
    assert chords.main([*flags, "--run_dir", str(again), "--num_epochs", "3", "--resume", str(alone)]) == 2
    err = capsys.readouterr().err
    assert f"cannot resume from {alone}" in err and "Traceback" not in err and not again.exists(), err


def _edit_chord_state(checkpoint: Path, edit) -> None:
    """Apply `edit` to what the chord task stored in `checkpoint`'s trainer state."""
    state_file = checkpoint / ckpt.STATE_FILE
    state = json.loads(state_file.read_text())
    edit(state["module_state"][CHECKPOINT_KEY])
    state_file.write_text(json.dumps(state))


def test_a_checkpoint_moved_out_of_its_run_folder_resumes_on_its_own_songs(
    tiny_run, folder_runs, tmp_path, capsys
):
    """The song names of each part were kept only in the run folder's config.json: a checkpoint copied
    elsewhere (to keep it, to share it) split the data folder again, and with one song added since it was
    refused. It records them itself now: it goes on with its own songs, exactly, and `evaluate
    --test_songs_of` finds its test songs in it. Where a config.json beside it lists others, its own win."""
    data = tmp_path / "songs"
    generate_demo_songs(data, n_songs=4, seed=9, song_seconds=6)
    flags = _folder_run_flags(tiny_run, data)
    # (the uninterrupted run of these songs, shared: it trained on a folder of the same 4 songs)
    run_dir, straight, resumed = tmp_path / "run", folder_runs.straight, tmp_path / "resumed"
    assert chords.main([*flags, "--run_dir", str(run_dir)]) == 0
    songs = json.loads((run_dir / "config.json").read_text())["songs"]
    for suffix in (".wav", ".lab"):
        (data / f"added{suffix}").write_bytes((data / f"song_001{suffix}").read_bytes())
    alone = tmp_path / "kept" / "last"
    shutil.copytree(run_dir / "checkpoints" / "last", alone)
    capsys.readouterr()
    assert chords.main([*flags, "--run_dir", str(resumed), "--num_epochs", "3", "--resume", str(alone)]) == 0
    err = capsys.readouterr().err
    assert f"1 song added to {data} since is not used" in err
    # Said in the run's terms (the Trainer's warning spoke of best_k_models and dirpath):
    assert f"note: --resume {alone}: the run goes on in {resumed}, with checkpoints of its own\n" in err, err
    assert "best_k_models" not in err
    assert json.loads((resumed / "config.json").read_text())["songs"] == songs
    _trained_the_same(resumed, straight)
    # Its held-out songs, from the checkpoint alone.
    scored = tmp_path / "scored"
    evaluate = ["evaluate", "--checkpoint", str(alone), "--data", str(data), "-o", str(scored)]
    assert chords.main([*evaluate, "--test_songs_of", str(alone)]) == 0
    assert sorted(json.loads((scored / "scores.json").read_text())["per_song"]) == sorted(songs["test"])
    # Copied into a run folder whose config.json splits the songs otherwise: the checkpoint's parts, said.
    foreign = tmp_path / "foreign"
    shutil.copytree(run_dir, foreign)
    record = json.loads((foreign / "config.json").read_text())
    record["songs"]["train"], record["songs"]["val"] = record["songs"]["val"], record["songs"]["train"]
    (foreign / "config.json").write_text(json.dumps(record))
    there = foreign / "checkpoints" / "last"
    again = tmp_path / "again"
    capsys.readouterr()
    assert chords.main([*flags, "--run_dir", str(again), "--num_epochs", "3", "--resume", str(there)]) == 0
    out = capsys.readouterr().err
    assert f"note: {foreign / 'config.json'} lists other songs than checkpoint {there}" in out, out
    assert f"; pass --run_dir {foreign.resolve()} to go on in its own run folder" in out, out
    assert "the same songs in other parts" in out and "resuming on the songs the checkpoint records" in out
    _trained_the_same(again, straight)
    # A record edited by hand elsewhere: wrong-typed digests or counts, or counts its names contradict, are
    # refused naming the field (they gave a raw TypeError, or advice to restore data that had not changed).
    state_file = alone / ckpt.STATE_FILE
    intact = state_file.read_bytes()
    val_songs = len(songs["val"])
    for edit, expected in [
        (lambda stored: stored["songs"].update(names_sha256=5), "songs.names_sha256 must be an object of"),
        (lambda stored: stored["songs"].update(val="x"), "songs.val is 'x', not a number of songs"),
        (lambda stored: stored["songs"].update(val=True), "songs.val is True, not a number of songs"),
        (lambda stored: stored["songs"].update(val=[[[]]]), "songs.val is [[[]]], not a number of songs"),
        (
            lambda stored: stored["songs"].update(val=val_songs + 2),
            f"songs.val is {val_songs + 2}, but its names.val lists {val_songs} song",
        ),
    ]:
        _edit_chord_state(alone, edit)
        assert (
            chords.main(
                [*flags, "--run_dir", str(tmp_path / "r"), "--num_epochs", "3", "--resume", str(alone)]
            )
            == 2
        )
        err = capsys.readouterr().err
        assert f"{state_file}: module_state.{CHECKPOINT_KEY}.{expected}" in err and "Traceback" not in err, (
            err
        )
        assert not (tmp_path / "r").exists()
        state_file.write_bytes(intact)
    # Names edited by hand are not the ones it trained on: refused, naming the field.
    _edit_chord_state(alone, lambda stored: stored["songs"]["names"]["train"].reverse())
    refused = tmp_path / "refused"
    assert chords.main([*flags, "--run_dir", str(refused), "--num_epochs", "3", "--resume", str(alone)]) == 2
    err = capsys.readouterr().err
    assert "songs.names.train is not the list its names_sha256.train was made of" in err, err
    assert "Traceback" not in err and not refused.exists()
    # A checkpoint of a version before the names were recorded, alone: split again and compared, as before.
    _edit_chord_state(alone, lambda stored: stored["songs"].pop("names"))
    assert chords.main([*flags, "--run_dir", str(refused), "--num_epochs", "3", "--resume", str(alone)]) == 2
    err = capsys.readouterr().err
    assert "its run folder's config.json, which lists them, was not found" in err, err
    assert not refused.exists()


def test_an_older_checkpoint_does_not_resume_on_the_songs_of_a_config_json_written_over_since(
    tiny_run, tmp_path, capsys
):
    """A checkpoint of a version before the songs' names were recorded reads them from its run folder's
    config.json, but only where that list is the one its record was made of: a config.json that another run
    wrote over (a folder reused with --overwrite) or one edited since would have the resume go on with other
    songs, or the same in another order, than the checkpoint's position in the data counts in. It splits the
    data folder again instead, and compares that with its record: here the songs it trained on (a checkpoint
    that records counts alone is compared with the digests of config.json's names, and refused). Away from
    its run folder it has its digests alone, and every part is compared with them."""
    data = tmp_path / "songs"
    generate_demo_songs(data, n_songs=5, seed=9, song_seconds=6)
    flags = _folder_run_flags(tiny_run, data)
    run_dir = tmp_path / "run"
    assert chords.main([*flags, "--run_dir", str(run_dir)]) == 0
    songs = json.loads((run_dir / "config.json").read_text())["songs"]
    assert len(songs["train"]) >= 2
    for name, recorded, edit in [
        # Its digests (and counts) recorded: the train songs of config.json in another order.
        ("digests", ("train", "val", "test", "names_sha256"), lambda listed: listed["train"].reverse()),
        # Only its counts recorded: a train song of config.json moved to val.
        ("counts", ("train", "val", "test"), lambda listed: listed["val"].append(listed["train"].pop())),
    ]:
        old = tmp_path / name
        shutil.copytree(run_dir, old)
        _edit_chord_state(
            old / "checkpoints" / "last",
            lambda stored, recorded=recorded: stored.update(
                songs={key: stored["songs"][key] for key in recorded}
            ),
        )
        record = json.loads((old / "config.json").read_text())
        edit(record["songs"])
        (old / "config.json").write_text(json.dumps(record))
        resumed = tmp_path / f"resumed-{name}"
        resume = [
            *flags,
            "--run_dir",
            str(resumed),
            "--num_epochs",
            "3",
            "--resume",
            str(old / "checkpoints" / "last"),
        ]
        # (A checkpoint of counts alone is refused here: the digests are taken from config.json's names.)
        code = chords.main(resume)
        assert code == 0 or (name == "counts" and code == 2), capsys.readouterr().err
        assert code or json.loads((resumed / "config.json").read_text())["songs"] == songs, name
    # Outside its run folder it has its digests alone: each part is compared, the val songs too.
    alone = tmp_path / "kept" / "last"
    shutil.copytree(run_dir / "checkpoints" / "last", alone)
    _edit_chord_state(alone, lambda stored: stored["songs"].pop("names"))
    _edit_chord_state(
        alone, lambda stored: stored["songs"]["names_sha256"].update(val=names_digest(["other"]))
    )
    refused = tmp_path / "refused"
    capsys.readouterr()
    assert chords.main([*flags, "--run_dir", str(refused), "--num_epochs", "3", "--resume", str(alone)]) == 2
    err = capsys.readouterr().err
    assert f"cannot resume from {alone}: its val songs were others than the data folder {data}" in err, err
    assert not refused.exists()
    # One that records counts alone: each part's count is compared.
    counts = {part: len(songs[part]) for part in ("train", "val", "test")}
    moved = {**counts, "val": counts["val"] + 1, "test": counts["test"] - 1}
    _edit_chord_state(alone, lambda stored: stored.update(songs=moved))
    assert chords.main([*flags, "--run_dir", str(refused), "--num_epochs", "3", "--resume", str(alone)]) == 2
    err = capsys.readouterr().err
    expected = f"it was trained on 5 songs (train {moved['train']}, val {moved['val']}, test {moved['test']})"
    assert expected in err and not refused.exists(), err


def test_val_fraction_0_trains_on_every_song_without_validation(tiny_run, tmp_path, capsys):
    """--data.val_fraction 0 is honoured: no song is moved from training to validation (one used to be,
    while config.json said 0), and the run says what that means: no early stopping, and its last checkpoint
    is the one evaluated and printed."""
    root, _ = tiny_run
    data = tmp_path / "songs"
    generate_demo_songs(data, n_songs=4, seed=9, song_seconds=6)
    run_dir = tmp_path / "run"
    argv = [
        "train",
        "--data",
        str(data),
        *TINY_FLAGS,
        "--data.cache_dir",
        str(root / "cache"),
        "--save_every",
        "0",
    ]
    capsys.readouterr()
    assert (
        chords.main(
            [*argv, "--data.val_fraction", "0", "--data.test_fraction", "0.25", "--run_dir", str(run_dir)]
        )
        == 0
    )
    captured = capsys.readouterr()
    out = captured.err
    assert "4 songs in" in out and "3 train / 0 val / 1 test songs" in out, out
    assert "no validation songs (data.val_fraction 0): no early stopping" in out
    record = json.loads((run_dir / "config.json").read_text())
    assert record["config"]["data"]["val_fraction"] == 0.0
    assert record["songs"]["val"] == [] and len(record["songs"]["train"]) == 3
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["last"]
    assert f"checkpoint:  {run_dir / 'checkpoints' / 'last'}" in captured.out
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history["train_loss"]) == 2 and "val_loss" not in history
    assert (run_dir / "evaluation" / "scores.json").is_file()


def test_a_folder_of_one_song_is_refused_naming_the_setting_that_trains_on_it(tiny_run, tmp_path, capsys):
    """A folder of one annotated song was refused with "need at least 2 annotated songs to train and
    validate", and no word of `--data.val_fraction 0`, which trains on it (as the refusal now says)."""
    root, _ = tiny_run
    data = tmp_path / "songs"
    generate_demo_songs(data, n_songs=1, seed=9, song_seconds=6)
    argv = ["train", "--data", str(data), *TINY_FLAGS, "--data.cache_dir", str(root / "cache")]
    capsys.readouterr()
    assert chords.main([*argv, "--run_dir", str(tmp_path / "refused")]) == 2
    err = capsys.readouterr().err
    assert "need at least 2 annotated songs" in err, err
    assert "--data.val_fraction 0 trains on the one song, without validation" in err, err
    assert not (tmp_path / "refused").exists()
    assert chords.main([*argv, "--data.val_fraction", "0", "--run_dir", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "1 song in " in err and "1 train / 0 val / 0 test songs" in err, err
    # (It said "1 songs in", twice. \b: the shared cache's "41 songs there in all" is no such line.)
    assert "this run's 1 song in " in err and not re.search(r"\b1 songs\b", err), err
    # Fewer windows than --batch_size 4: the one step takes them all (it said "1 step of 4").
    all_windows = (
        r"\b(\d) windows of 32 frames per epoch \(1 step of all \1: --batch_size 4 is more than there"
    )
    assert re.search(all_windows, err), err


def test_the_fewest_demo_songs_allowed_train_one_and_validate_one(tiny_run, tmp_path, capsys):
    """`--data.demo_songs` is refused under 2, "a training and a validation song at least"; 2 trained both
    songs and validated on none (no best checkpoint, no early stopping), as if `data.val_fraction` were 0."""
    root, _ = tiny_run
    run_dir = tmp_path / "run"
    argv = [*TINY_FLAGS, "--data.demo_songs", "2", "--num_epochs", "1", "--save_every", "0"]
    capsys.readouterr()
    assert chords.main([*argv, "--data.cache_dir", str(root / "cache"), "--run_dir", str(run_dir)]) == 0
    err = capsys.readouterr().err
    assert "1 train / 1 val / 1 test songs" in err and "no validation songs" not in err, err
    assert (run_dir / "checkpoints" / "best" / "model.safetensors").is_file()


def test_init_from_a_run_whose_best_cannot_be_loaded_says_its_last_stands_in(tiny_run, tmp_path, capsys):
    """A run folder whose best checkpoint lost its trainer_state.json (a copy cut short) gave --init_from its
    last checkpoint with no word, where predict, evaluate and export say that last stands in for the best
    that validation chose: a fine-tune started from other weights than the user meant."""
    import shutil

    root, demo_run = tiny_run
    run = tmp_path / "demo"
    shutil.copytree(demo_run, run)
    (run / "checkpoints" / "best" / "trainer_state.json").unlink()
    data = tmp_path / "songs"
    generate_demo_songs(data, n_songs=4, seed=9, song_seconds=6)
    flags = [
        "train", "--data", str(data), "--data.cache_dir", str(root / "cache"), "--batch_size", "4",
        "--data.window_frames", "32", "--num_epochs", "1", "--save_every", "0", "--progress_bar", "false",
    ]  # fmt: skip
    capsys.readouterr()
    assert chords.main([*flags, "--init_from", str(run), "--run_dir", str(tmp_path / "mine")]) == 0
    err = capsys.readouterr().err
    last, best = run / "checkpoints" / "last", run / "checkpoints" / "best"
    assert f"model: weights from {last}" in err, err
    assert f"not the run's best: {best}, which its validation chose, cannot be loaded" in err, err


def test_init_from_fine_tunes_a_trained_model_on_other_songs(tiny_run, tmp_path, capsys):
    """The demo model -> my own songs: --resume refuses other songs and points at --init_from, which starts
    a new run from the checkpoint's weights alone (its model and feature settings taken from it, a fresh
    optimizer, schedule and epoch count), in a folder of its own, and records where it started."""
    from safetensors.numpy import load_file

    root, demo_run = tiny_run
    data = tmp_path / "songs"
    generate_demo_songs(data, n_songs=4, seed=9, song_seconds=6)
    best = demo_run / "checkpoints" / "best"
    flags = [
        "train", "--data", str(data), "--data.cache_dir", str(root / "cache"), "--batch_size", "4",
        "--data.window_frames", "32", "--num_epochs", "1", "--save_every", "0", "--progress_bar", "false",
    ]  # fmt: skip
    capsys.readouterr()
    assert (
        chords.main(
            [
                *flags,
                *TINY_FLAGS,
                "--num_epochs",
                "3",
                "--run_dir",
                str(tmp_path / "r"),
                "--resume",
                str(best),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert (
        "from the demo data, not on the data folder" in err
        and f"--init_from {best} in place of --resume" in err
    ), err
    # Only the weights: a learning rate too small to move them leaves the checkpoint's weights as they were.
    run = tmp_path / "mine"
    assert (
        chords.main([*flags, "--init_from", str(demo_run), "--learning_rate", "1e-12", "--run_dir", str(run)])
        == 0
    )
    out = capsys.readouterr().err
    progress = ckpt.read_state(best)["progress"]
    epochs = progress["epoch"]
    assert f"model: weights from {best} (after {epochs} epoch{'s' * (epochs != 1)} of its run)" in out, out
    record = json.loads((run / "config.json").read_text())
    started_at = {"checkpoint": str(best.resolve()), "epoch": epochs, "global_step": progress["global_step"]}
    assert record["init_from"] == started_at
    assert record["config"]["model"]["d_model"] == 32 and record["config"]["features"]["max_pitch_shift"] == 3
    assert len(record["songs"]["train"]) + len(record["songs"]["val"]) + len(record["songs"]["test"]) == 4
    started, tuned = (load_file(str(d / "model.safetensors")) for d in (best, run / "checkpoints" / "last"))
    assert started.keys() == tuned.keys()
    assert all(np.allclose(started[k], tuned[k], atol=1e-6) for k in started)
    state = ckpt.read_state(run / "checkpoints" / "last")
    assert state["progress"]["epoch"] == 1  # its own epochs, from 0
    assert state["module_state"][CHECKPOINT_KEY]["init_from"] == record["init_from"]
    assert json.loads((run / "history.json").read_text())["epoch"] == [0]
    # The command an interrupted run prints keeps --init_from beside --resume: the run goes on from its own
    # checkpoint, in its own folder.
    last = run / "checkpoints" / "last"
    argv = [*flags, "--init_from", str(demo_run), "--learning_rate", "1e-12", "--run_dir", str(run)]
    assert chords.main([*argv, "--num_epochs", "2", "--resume", str(last)]) == 0
    assert json.loads((run / "history.json").read_text())["epoch"] == [0, 1]
    capsys.readouterr()
    # Settings that the weights were not trained with are refused, each named; nothing is written.
    refused = tmp_path / "refused"
    for extra, named in (
        (["--model.d_model", "64"], "model.d_model (32 there, 64 here)"),
        (["--features.tuning_correction", "false"], "features.tuning_correction (True there, False here)"),
        # Same shapes, another network: refused by name, as the weights' shapes cannot tell.
        (["--model.n_heads", "4"], "model.n_heads (2 there, 4 here)"),
        (["--features.log_gain", "10"], "features.log_gain (LOG_GAIN there, 10.0 here)"),
    ):
        named = named.replace("LOG_GAIN", repr(TrainingConfig().features.log_gain))
        assert chords.main([*flags, "--init_from", str(best), *extra, "--run_dir", str(refused)]) == 2
        err = capsys.readouterr().err
        assert named in err and "only --model.dropout may differ" in err and "Traceback" not in err, err
        assert not refused.exists()
    # Nor may the new run's folder hold the checkpoint it starts from (--overwrite would remove it).
    copy = tmp_path / "copy"
    shutil.copytree(demo_run, copy)
    argv = [*flags, "--init_from", str(copy), "--run_dir", str(copy), "--overwrite"]
    assert chords.main(argv) == 2
    assert "lies inside --run_dir" in capsys.readouterr().err
    # A resume with another --init_from than the run started from would record a start that never was.
    argv = [
        *flags,
        "--init_from",
        str(copy),
        "--run_dir",
        str(run),
        "--num_epochs",
        "3",
        "--resume",
        str(last),
    ]
    assert chords.main(argv) == 2
    err = capsys.readouterr().err
    assert (
        f"the resumed run started from the weights of {best.resolve()}" in err and "Traceback" not in err
    ), err
    assert json.loads((run / "config.json").read_text())["init_from"] == started_at
    assert (copy / "checkpoints" / "best" / "model.safetensors").is_file()
    # The run's config.json repeats its settings; its start from other weights is said, not dropped silently.
    assert chords.main(["train", "--config", str(run / "config.json"), "--run_dir", str(run)]) == 2
    out = capsys.readouterr().err
    assert f"started from the weights of {best.resolve()} (--init_from)" in out, out


def _demo_resume(tmp_path, root, *flags):
    """A tiny demo run's argv, its checkpoint cache shared with the module's other demo runs."""
    return [*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--num_epochs", "3", *flags]


def test_resume_refuses_demo_songs_made_with_another_mix(tiny_run, tmp_path, capsys):
    # The demo's names do not say how its songs were made: the mix of styles is in the checkpoint.
    root, run_dir = tiny_run
    last = str(run_dir / "checkpoints" / "last")
    other = tmp_path / "other"
    capsys.readouterr()
    argv = _demo_resume(
        tmp_path, root, "--data.demo_styles", "train", "--run_dir", str(other), "--resume", last
    )
    assert chords.main(argv) == 2
    _one_error_line(
        capsys,
        "its demo songs were made with other settings: data.demo_styles (['train', 'studio', "
        "'patches'] there, ['train'] here)",
        "Resume with --data.demo_styles train,studio,patches",
    )
    assert not other.exists()
    # The same styles in other shares give some songs another style (of 4: 1 train, 2 studio, 1 patches).
    argv = _demo_resume(
        tmp_path,
        root,
        "--data.demo_styles",
        "train,studio:2,patches",
        "--run_dir",
        str(other),
        "--resume",
        last,
    )
    assert chords.main(argv) == 2
    _one_error_line(capsys, "data.demo_styles (['train', 'studio', 'patches'] there, ['train', 'studio:2'")
    assert not other.exists()


def test_resume_refuses_another_demo_song_count_before_rendering_naming_the_flags(tiny_run, tmp_path, capsys):
    """Another --data.demo_songs came in a later round than the other demo settings, after every demo song was
    rendered and its features computed (232 for --preset development), and named no flag."""
    root, run_dir = tiny_run
    other = tmp_path / "other"
    capsys.readouterr()
    argv = _demo_resume(
        tmp_path, root, "--data.demo_songs", "6", "--data.demo_test_songs", "2", "--data.demo_seconds", "9"
    )
    assert (
        chords.main([*argv, "--run_dir", str(other), "--resume", str(run_dir / "checkpoints" / "last")]) == 2
    )
    err = capsys.readouterr().err
    assert "demo songs in" not in err and "features" not in err, err  # (nothing rendered first)
    assert len(err[err.index("error: ") :].strip().splitlines()) == 2, err
    assert (
        "its demo songs were made with other settings: data.demo_songs (4 there, 6 here), "
        "data.demo_test_songs (1 there, 2 here), data.demo_seconds (8.0 there, 9.0 here)"
    ) in err, err
    assert "Resume with --data.demo_songs 4 --data.demo_test_songs 1 --data.demo_seconds 8.0" in err, err
    assert not other.exists()


def test_resume_names_a_recorded_demo_setting_no_flag_gives(tiny_run, tmp_path, capsys):
    """A hand-edited checkpoint whose demo seed is '' was advised "Resume with --data.demo_seed ,", a command
    that cannot be typed: the record's field is named in place of a flag."""
    root, run_dir = tiny_run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    state_file = copy / "checkpoints" / "last" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state["module_state"]["chord_recognition"]["songs"]["demo"]["demo_seed"] = ""
    state_file.write_text(json.dumps(state))
    capsys.readouterr()
    argv = _demo_resume(
        tmp_path, root, "--run_dir", str(copy), "--resume", str(copy / "checkpoints" / "last")
    )
    assert chords.main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Resume with" not in err, err
    assert (
        f"its demo songs were made with data.demo_seed '' ({state_file}: "
        "module_state.chord_recognition.songs.demo.demo_seed), a value no flag gives "
        "(ChordDataConfig.demo_seed must be an integer, got str '')"
    ) in err, err
    assert "start a new run folder with --init_from" in err, err
    # The song count and the split are recorded with the run's settings: that field is named.
    state["module_state"]["chord_recognition"]["songs"]["demo"]["demo_seed"] = 0
    state["run_config"]["data"]["val_fraction"] = "a"
    state_file.write_text(json.dumps(state))
    assert chords.main(argv) == 2
    err = capsys.readouterr().err
    assert (
        f"data.val_fraction 'a' ({state_file}: run_config.data.val_fraction), a value no flag gives" in err
    ), err


def test_resume_refuses_demo_songs_a_newer_generator_of_any_style_of_the_mix_renders(
    tiny_run, tmp_path, monkeypatch, capsys
):
    """An upgrade that changes one style's generator renders other audio under the same song names: every style
    of the mix records its generator version, and a resume after such a change is refused, without advising a
    flag that does not exist (no flag picks a generator)."""
    from audiotrain.recipes.chords import song_record

    root, run_dir = tiny_run
    stored = json.loads((run_dir / "checkpoints" / "last" / ckpt.STATE_FILE).read_text())
    generators = stored["module_state"][CHECKPOINT_KEY]["songs"]["demo"]["generators"]
    assert set(generators) == {"train", "studio", "patches"}, generators
    upgraded = song_record.generator_version
    monkeypatch.setattr(song_record, "generator_version", lambda style: upgraded(style) + (style == "studio"))
    other = tmp_path / "other"
    capsys.readouterr()
    argv = _demo_resume(
        tmp_path, root, "--run_dir", str(other), "--resume", str(run_dir / "checkpoints" / "last")
    )
    assert chords.main(argv) == 2
    err = capsys.readouterr().err
    assert "its demo songs were made with other settings: the demo generator versions (" in err, err
    assert f"'studio': {generators['studio']}" in err and f"'studio': {generators['studio'] + 1}" in err, err
    assert "Resume with" not in err and "--data.generators" not in err, err
    assert "Start a new run folder with --init_from" in err, err
    assert not other.exists()


def test_resume_refuses_another_demo_val_fraction_before_rendering_naming_the_flag(
    tiny_run, tmp_path, capsys
):
    """Another --data.val_fraction splits the demo songs into other train and val songs: named, before any song
    is rendered, with the flag that resumes the run."""
    root, run_dir = tiny_run
    other, empty_cache = tmp_path / "other", tmp_path / "cache"
    capsys.readouterr()
    argv = [
        *TINY_FLAGS, "--data.cache_dir", str(empty_cache), "--num_epochs", "3", "--data.val_fraction", "0.5",
        "--run_dir", str(other), "--resume", str(run_dir / "checkpoints" / "last"),
    ]  # fmt: skip
    assert chords.main(argv) == 2
    _one_error_line(
        capsys,
        "its demo songs were made with other settings: data.val_fraction (0.15 there, 0.5 here)",
        "Resume with --data.val_fraction 0.15",
    )
    assert not other.exists() and not empty_cache.exists()


def test_resume_accepts_the_same_mix_spelled_otherwise(tiny_run, tmp_path):
    # Shares, not spellings, decide which style each demo song has: 2:2:2 makes the songs 1:1:1 made.
    root, run_dir = tiny_run
    resumed = tmp_path / "resumed"
    argv = _demo_resume(
        tmp_path, root, "--data.demo_styles", "train:2,studio:2,patches:2", "--run_dir", str(resumed)
    )
    assert chords.main([*argv, "--resume", str(run_dir / "checkpoints" / "last")]) == 0
    assert json.loads((resumed / "history.json").read_text())["epoch"] == [0, 1, 2]


def test_the_evaluate_advised_for_a_finished_run_in_a_folder_with_a_space_pastes_as_one_path(
    tiny_run, tmp_path, capsys
):
    """A resume with no epoch left advised `evaluate --checkpoint my run/checkpoints/last ...`: pasted, the
    shell split the path at its space. The advice now quotes it as the printed commands do."""
    root, run_dir = tiny_run
    last = tmp_path / "my run" / "checkpoints" / "last"
    shutil.copytree(run_dir / "checkpoints" / "last", last)
    capsys.readouterr()
    argv = [*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--run_dir", str(tmp_path / "again")]
    assert chords.main([*argv, "--resume", str(last)]) == 2
    err = capsys.readouterr().err
    advice = err[err.index("(evaluate ") + 1 : err.index(" -o OUT)")]
    words = shlex.split(advice)
    assert words[words.index("--checkpoint") + 1] == str(last), err
    assert words[words.index("--test_songs_of") + 1] == str(last), err


def test_a_run_from_before_the_demo_mix_resumes_only_with_its_own_style(tiny_run, tmp_path, capsys):
    # A run of an older version: its checkpoint records only song counts and its config.json has no
    # demo_styles (every song was of the train style). Resumed under today's default mix it would train on
    # other audio under the same count; it is refused with the flag that continues it exactly.
    root, _ = tiny_run
    old = tmp_path / "old"
    argv = _demo_resume(tmp_path, root, "--data.demo_styles", "train", "--run_dir", str(old))
    assert chords.main([*argv, "--num_epochs", "2"]) == 0
    last = old / "checkpoints" / "last"
    # A finished run has nothing left to train at the same --num_epochs: said before anything is made.
    capsys.readouterr()
    assert (
        chords.main(
            [*argv[:-2], "--num_epochs", "2", "--run_dir", str(tmp_path / "again"), "--resume", str(last)]
        )
        == 2
    )
    _one_error_line(
        capsys, "it has trained 2 epochs, and --num_epochs 2 leaves none to train", "raise --num_epochs"
    )
    assert not (tmp_path / "again").exists()
    state_file = last / ckpt.STATE_FILE
    state = json.loads(state_file.read_text())
    songs = state["module_state"][CHECKPOINT_KEY]["songs"]
    state["module_state"][CHECKPOINT_KEY]["songs"] = {part: songs[part] for part in ("train", "val", "test")}
    state_file.write_text(json.dumps(state))
    record = json.loads((old / "config.json").read_text())
    del record["config"]["data"]["demo_styles"]
    (old / "config.json").write_text(json.dumps(record))
    capsys.readouterr()
    resumed = tmp_path / "resumed"
    assert chords.main(_demo_resume(tmp_path, root, "--run_dir", str(resumed), "--resume", str(last))) == 2
    _one_error_line(
        capsys,
        "data.demo_styles (['train'] there, ['train', 'studio', 'patches'] here)",
        "--data.demo_styles train",
    )
    assert not resumed.exists()
    argv = _demo_resume(tmp_path, root, "--data.demo_styles", "train", "--run_dir", str(resumed))
    # Nor does such a record hold the generator versions: resumed only when told (tests/test_older_artefacts.py).
    assert chords.main([*argv, "--resume", str(last), "--resume_unrecorded_demo"]) == 0
    assert json.loads((resumed / "history.json").read_text())["epoch"] == [0, 1, 2]


def test_an_interrupted_run_prints_the_command_that_continues_it(tiny_run, tmp_path, monkeypatch, capsys):
    _, run_dir = tiny_run
    monkeypatch.chdir(tmp_path)
    (tmp_path / "songs dir").mkdir()
    saved = run_dir / "checkpoints" / "interrupted"

    def interrupted_training(
        config, run_dir_arg, resume=None, overwrite=False, init_from=None, replay_of=None
    ):
        folder = run_dir_arg or Path("runs/chords-20260101-120000")  # the default folder it made
        return chords_train.RunResult(folder, folder / "checkpoints" / "best", {}, None, 1.0, saved)

    monkeypatch.setattr(chords, "run_training", interrupted_training)
    argv = ["--data", "songs dir", "--num_epochs", "3", "--resume", "old", "--run_dir", "r"]
    assert chords.main(["train", *argv]) == 130  # as a shell reports a command stopped by Ctrl-C
    out = capsys.readouterr().err
    # The folders as absolute paths: pasted in another folder, a relative --run_dir resumed into a new run
    # folder there, and a relative --data named no folder.
    expected = (
        f"python -m audiotrain.recipes.chords train --data '{tmp_path}/songs dir' --num_epochs 3 --run_dir "
        f"{tmp_path}/r --resume {saved}"
    )
    assert "interrupted" in out and expected in out
    # Without --run_dir the command names the folder the run made: resuming goes on there, with its best
    # checkpoint, instead of starting another default folder (and without --overwrite, which would replace it).
    assert chords.main(["train", "--data", "songs dir", "--overwrite"]) == 130
    expected = (
        f"python -m audiotrain.recipes.chords train --data '{tmp_path}/songs dir' --run_dir "
        f"{tmp_path}/runs/chords-20260101-120000 --resume {saved}"
    )
    assert expected in capsys.readouterr().err


def test_a_run_folder_given_as_tilde_after_equals_holds_its_checkpoints_too(tiny_run, tmp_path, monkeypatch):
    """The shell leaves ``~`` after ``=`` as it is: the run folder was a literal ./~/runs/t, its checkpoints
    (ModelCheckpoint expands ``~``) went to $HOME/runs/t, and the final evaluation found none."""
    root, _ = tiny_run
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(), work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    argv = [*TINY_FLAGS, "--num_epochs", "1", "--data.cache_dir", str(root / "cache"), "--run_dir=~/runs/t"]
    assert chords.main(argv) == 0
    run_dir = home / "runs" / "t"
    assert (run_dir / "config.json").is_file() and (run_dir / "checkpoints" / "best").is_dir()
    assert (run_dir / "evaluation" / "scores.json").is_file()
    song = generate_demo_songs(tmp_path / "songs", n_songs=1, seed=7, song_seconds=4)[0].audio_path
    assert chords.main(["predict", "--checkpoint=~/runs/t", str(song), "-o=~/song.lab"]) == 0
    assert (home / "song.lab").is_file()
    assert not list(work.iterdir())  # no literal ./~ folder


def test_cli_errors_are_reported(tmp_path, capsys):
    assert chords.main(["fit"]) == 2
    assert "unknown command 'fit'" in capsys.readouterr().err
    # --data without a command (as the CLAP recipe takes it) names the command it belongs to.
    for flags in (["--data", str(tmp_path)], [f"--data={tmp_path}", "--num_epochs", "1"]):
        assert chords.main(flags) == 2
        assert "--data DIR belongs to the train command" in capsys.readouterr().err
    assert chords.main(["predict", "--checkpoint", str(tmp_path), str(tmp_path / "missing.wav")]) == 2
    with pytest.raises(ckpt.CheckpointError, match="does not exist|not a complete"):
        ChordPredictor.from_checkpoint(tmp_path / "nothing")


def _one_error_line(capsys, *fragments) -> None:
    err = capsys.readouterr().err
    # (notes said before it, on stderr as every diagnostic, come first; no usage of every setting after it)
    error = err[err.index("error: ") :] if "error: " in err else err
    assert "Traceback" not in err and "usage:" not in err and len(error.strip().splitlines()) <= 2, err
    assert all(fragment in err for fragment in fragments), err


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["--num_epochs", "0"], ["num_epochs (--num_epochs) must be an integer > 0 and <= 100000, got 0"]),
        (["--decode.method", "bogus"], ["--decode.method: invalid choice: 'bogus'", "viterbi"]),
        (["--config", "missing.yaml"], ["missing.yaml"]),
        (["train", "--data", "no/such/folder"], ["--data no/such/folder: no such folder"]),
        # Checked when the config is built, not by the DataLoader or the loss after config.json is written.
        (
            ["--data.num_workers=-1"],
            ["data.num_workers (--data.num_workers) must be an integer >= 0 and <= 256, got -1"],
        ),
        (["--loss.root_weight=-1"], ["loss.root_weight (--loss.root_weight) must be a finite number >= 0"]),
        (["--save_keep=-1"], ["save_keep (--save_keep) must be an integer >= 0"]),
        # 1e308 and 1e-300 met "cannot convert float NaN to integer" and "Maximum allowed dimension exceeded".
        *(
            (
                ["--features.fmin", value],
                [
                    "features.fmin (--features.fmin) must be a finite frequency from 1 Hz to below the Nyquist "
                    "frequency sr / 2 = 11025 Hz"
                ],
            )
            for value in ("-5", "0", "nan", "inf", "1e308", "1e300", "11025", "1e-300", "0.001")
        ),
    ],
)
def test_bad_settings_are_one_error_line_before_anything_runs(argv, fragments, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(chords, "run_training", lambda *a, **k: pytest.fail("ran with bad settings"))
    status = chords.main([*argv, "--run_dir", str(tmp_path / "run")])
    assert status == 2
    _one_error_line(capsys, *fragments)
    assert not (tmp_path / "run").exists()


def test_bad_resume_and_checkpoint_fail_fast_without_a_traceback(tiny_run, tmp_path, monkeypatch, capsys):
    root, run_dir = tiny_run
    # A mistyped --resume is found before any data is read or model built, and leaves no run folder.
    monkeypatch.setattr(chords_train, "demo_splits", lambda *a, **k: pytest.fail("read the data first"))
    argv = [*TINY_FLAGS, "--run_dir", str(tmp_path / "run"), "--resume", str(tmp_path / "nothere")]
    assert chords.main(argv) == 2
    _one_error_line(capsys, "nothere", "does not exist")
    assert not (tmp_path / "run").exists()
    song = generate_demo_songs(tmp_path / "songs", n_songs=1, seed=3, song_seconds=4)[0].audio_path
    capsys.readouterr()
    assert chords.main(["predict", "--checkpoint", str(tmp_path / "songs"), str(song)]) == 2
    _one_error_line(capsys, "not a complete audiotrain checkpoint")
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"")
    assert chords.main(["predict", "--checkpoint", str(run_dir), str(broken)]) == 2
    _one_error_line(capsys, "broken.wav", "empty")
    # Decoding and test-time settings a user can get wrong: named, nothing transcribed.
    for flags, fragment in (
        (
            ["--decode.bass_onset_frames", "-1"],
            "decode.bass_onset_frames (--decode.bass_onset_frames) must be finite and >= 0, got -1.0",
        ),
        (
            ["--decode.self_transition", "1"],
            "decode.self_transition (--decode.self_transition) must be in (0, 1)",
        ),
        (["--tta", "-1"], "--tta must be 0 semitones (off) or more, got -1"),
        (
            ["--tta", "4"],
            "was trained with features.max_pitch_shift 3, so its features reach 3 semitones either "
            "way; use --tta 3 or less",
        ),
    ):
        assert chords.main(["predict", "--checkpoint", str(run_dir), str(song), *flags]) == 2
        _one_error_line(capsys, fragment)
    # ... and the same settings spelled right: the plain decoding (no TTA, halfway boundaries, the path's bass).
    plain = ["--tta", "0", "--decode.refine_boundaries", "false", "--decode.bass_onset_frames", "0"]
    assert chords.main(["predict", "--checkpoint", str(run_dir), str(song), *plain]) == 0
    assert all(len(line.split("\t")) == 3 for line in capsys.readouterr().out.strip().splitlines())


def test_a_refused_resume_or_checkpoint_dir_writes_nothing(tiny_run, tmp_path, monkeypatch, capsys):
    """These refusals came after the run folder's config.json was written: the corrected command was then
    refused ("already holds files"), and a failed resume in the run's own folder rewrote its config.json
    with a command that never ran."""
    import mlx.core as mx

    root, run_dir = tiny_run
    afile = tmp_path / "afile"
    afile.write_text("mine")
    new = tmp_path / "new"
    base = [*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--num_epochs", "3"]
    assert chords.main([*base, "--run_dir", str(new), "--checkpoint_dir", str(afile)]) == 2
    _one_error_line(capsys, f"--checkpoint_dir {afile} is a file; expected a folder")
    # Another recipe's checkpoint (complete, with other arrays): refused before any data is read.
    monkeypatch.setattr(chords_train, "demo_splits", lambda *a, **k: pytest.fail("read the data first"))
    foreign = tmp_path / "clap" / "checkpoints" / "last"
    progress = {"epoch": 1, "batch_in_epoch": 0, "global_step": 2, "total_batches": 2, "micro_batches": 0}
    arrays = {"clap.text_projection.weight": mx.zeros((4, 4))}
    ckpt.write_checkpoint(
        foreign, arrays, {"step": mx.zeros(())}, {}, {"progress": progress, "random": {"mlx": [0, 1]}}
    )
    assert chords.main([*base, "--run_dir", str(new), "--resume", str(foreign)]) == 2
    _one_error_line(capsys, "model.safetensors does not match this ChordTask model", "1 unexpected")
    assert not new.exists()
    # A damaged checkpoint of the run's own folder: its config.json still describes the run that ran.
    own = tmp_path / "own"
    shutil.copytree(run_dir, own)
    record = (own / "config.json").read_bytes()
    for damaged in (ckpt.MODEL_FILE, ckpt.OPTIMIZER_FILE):
        (own / "checkpoints" / "last" / damaged).write_bytes(b"")
        assert chords.main([*base, "--run_dir", str(own), "--resume", str(own / "checkpoints" / "last")]) == 2
        _one_error_line(capsys, f"{damaged}: the file is empty (0 bytes); copy or download it again")
        assert (own / "config.json").read_bytes() == record
        shutil.copy(run_dir / "checkpoints" / "last" / damaged, own / "checkpoints" / "last" / damaged)


def test_a_second_run_started_into_the_same_folder_at_once_is_refused_before_it_writes(
    tiny_run, tmp_path, monkeypatch, capsys
):
    """Both runs passed the "already holds files" check; the folder ended with one run's config.json beside
    the other's checkpoints. Here run A opens the folder while run B prepares its songs."""
    root, _ = tiny_run
    run = tmp_path / "run"
    prepare = chords_train._prepare_songs

    def run_a_opens_the_folder_meanwhile(*args, **kwargs):
        prepared = prepare(*args, **kwargs)
        run.mkdir()
        (run / "config.json").write_text("run A's record")
        return prepared

    monkeypatch.setattr(chords_train, "_prepare_songs", run_a_opens_the_folder_meanwhile)
    assert chords.main([*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--run_dir", str(run)]) == 2
    _one_error_line(capsys, f"--run_dir {run} was taken by another run started at the same time")
    assert [p.name for p in run.iterdir()] == ["config.json"]
    assert (run / "config.json").read_text() == "run A's record"


def test_output_folders_that_cannot_be_written_are_one_error_line_before_any_work(
    tiny_run, tmp_path, make_read_only, monkeypatch, capsys
):
    """A read-only folder gave a PermissionError traceback at the first write (evaluate: after transcribing
    every song); a file among its parents a bare "[Errno 20] Not a directory" naming no flag."""
    _, run_dir = tiny_run
    monkeypatch.setattr(chords_train, "demo_splits", lambda *a, **k: pytest.fail("read the data first"))
    monkeypatch.setattr(chords.ChordPredictor, "from_checkpoint", lambda *a: pytest.fail("loaded the model"))
    afile = tmp_path / "afile"
    afile.write_text("mine")
    read_only = tmp_path / "ro"
    read_only.mkdir()
    make_read_only(read_only)
    song = tmp_path / "song.wav"
    for argv, fragments in (
        ([*TINY_FLAGS, "--run_dir", str(read_only)], [f"--run_dir {read_only}: cannot write in {read_only}"]),
        ([*TINY_FLAGS, "--run_dir", str(afile / "sub")], [f"{afile} is a file, not a folder, so"]),
        (["evaluate", "--checkpoint", str(run_dir), "--data", str(tmp_path), "-o", str(read_only / "e")],
         [f"-o {read_only / 'e'}: cannot write in {read_only}"]),
        (["predict", "--checkpoint", str(run_dir), str(song), "-o", str(afile / "x.lab")],
         [f"-o {afile / 'x.lab'}: {afile} is a file, not a folder"]),
    ):  # fmt: skip
        song.write_bytes(b"")  # (never read)
        assert chords.main(argv) == 2, argv
        _one_error_line(capsys, *fragments)
    assert not list(read_only.iterdir()) and afile.read_text() == "mine"


@pytest.mark.slow
def test_every_folder_the_main_command_writes_in_the_home_folder_is_named_in_the_readme(tmp_path):
    """A container user mounts one folder for outputs and must know what else a run writes, and which variable
    moves it: the README named ~/.cache/audiotrain (AUDIOTRAIN_CACHE_DIR), but not ~/.cache/matplotlib, where
    matplotlib keeps its font list (MPLCONFIGDIR)."""
    home = tmp_path / "home"
    home.mkdir()
    # (the variables that would move these folders elsewhere: the test's settings, not the user's)
    moved_by = ("XDG_", "MPLCONFIGDIR", "AUDIOTRAIN_CACHE", "HF_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(moved_by)}
    done = subprocess.run(
        [sys.executable, "-m", "audiotrain.recipes.chords", *TINY_FLAGS, "--num_epochs", "1",
         "--data.demo_seconds", "4", "--processes", "1", "--run_dir", str(tmp_path / "run")],
        cwd=tmp_path, env={**env, "HOME": str(home)}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    written = sorted({f"~/{p.relative_to(home).parts[0]}/{p.relative_to(home).parts[1]}"
                      for p in home.rglob("*") if p.is_file()})  # fmt: skip
    assert "~/.cache/audiotrain" in written, written
    assert [folder for folder in written if folder not in readme] == [], written


def test_a_working_folder_that_cannot_be_written_is_named_not_called_dot(
    tiny_run, tmp_path, make_read_only, monkeypatch, capsys
):
    """In a container whose working folder is read-only (``docker run -w /``), the default run folder and a
    relative ``-o`` were refused with "cannot write in . (Permission denied)": the user was not told which
    folder ``.`` was."""
    _, run_dir = tiny_run
    monkeypatch.setattr(chords_train, "demo_splits", lambda *a, **k: pytest.fail("read the data first"))
    read_only = tmp_path / "workdir"
    read_only.mkdir()
    make_read_only(read_only)
    monkeypatch.chdir(read_only)
    song = tmp_path / "song.wav"
    song.write_bytes(b"")  # (never read)
    for argv in (TINY_FLAGS, ["predict", "--checkpoint", str(run_dir), str(song), "-o", "preds"]):
        assert chords.main(argv) == 2, argv
        _one_error_line(capsys, f"cannot write in {read_only} (the working folder)")


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--run_dir", ""], "--run_dir"),
        (["train", "--data", ""], "--data"),
        (["evaluate", "--checkpoint", "run", "--data", ""], "--data"),
        (["predict", "--checkpoint", "run", "song.wav", "-o", ""], "-o/--output"),
        (["predict", "--checkpoint", "", "song.wav"], "--checkpoint"),
    ],
)
def test_an_empty_path_is_refused_naming_the_flag(argv, flag, tmp_path, monkeypatch, capsys):
    """``--run_dir "$RUN"`` with RUN unset wrote the run into the current folder, ``-o ""`` a .lab there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(chords, "run_training", lambda *a, **k: pytest.fail("ran with an empty path"))
    status = chords.main(argv)
    assert status == 2
    _one_error_line(capsys, f"argument {flag}: an empty path")
    assert not list(tmp_path.iterdir())


def test_an_empty_data_dir_is_no_song_folder_for_train(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(chords, "run_training", lambda *a, **k: pytest.fail("trained on the current folder"))
    status = chords.main(["train", "--data.data_dir", ""])
    assert status == 2
    _one_error_line(capsys, "--data.data_dir is an empty path")


def test_the_demo_command_records_its_data_folder_as_an_absolute_path(tmp_path, monkeypatch):
    """Without a command, --data.data_dir trains on the folder too, but config.json kept it relative: its
    --config RUN/config.json then failed from any other folder."""
    used = []
    monkeypatch.setattr(chords, "run_training", lambda config, *a, **k: used.append(config) or 1 / 0)
    (tmp_path / "songs").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ZeroDivisionError):
        chords.main(["--data.data_dir", "songs"])
    assert used[0].data.data_dir == str(tmp_path.resolve() / "songs")


def test_predict_and_evaluate_take_decode_joint_bass(tiny_run, tmp_path, capsys):
    import argparse

    _, run_dir = tiny_run
    parser = argparse.ArgumentParser()
    chords._predictor_arguments(parser)
    for value, expected in (("false", False), ("true", True)):
        args = parser.parse_args(["--checkpoint", str(run_dir), "--decode.joint_bass", value])
        assert chords._load_predictor(args).decode.joint_bass is expected
    assert chords._load_predictor(parser.parse_args(["--checkpoint", str(run_dir)])).decode.joint_bass is True
    songs = generate_demo_songs(tmp_path / "songs", n_songs=1, seed=7, song_seconds=4)
    capsys.readouterr()
    argv = ["--checkpoint", str(run_dir), "--decode.joint_bass", "false", "--tta", "0"]
    assert chords.main(["predict", *argv, str(songs[0].audio_path)]) == 0
    assert chords.main(["evaluate", *argv, "--data", str(tmp_path / "songs")]) == 0


def test_predict_takes_a_tta_as_far_as_the_checkpoints_max_pitch_shift(tiny_run):
    """``--tta`` up to the checkpoint's features.max_pitch_shift (3 for `tiny_run`) is taken, that bound
    included: only a larger one is refused
    (`test_bad_resume_and_checkpoint_fail_fast_without_a_traceback`)."""
    import argparse

    _, run_dir = tiny_run
    parser = argparse.ArgumentParser()
    chords._predictor_arguments(parser)
    predictor = chords._load_predictor(parser.parse_args(["--checkpoint", str(run_dir), "--tta", "3"]))
    assert predictor.features.max_pitch_shift == 3
    assert predictor.tta_shifts == (-3, -2, -1, 0, 1, 2, 3)


@pytest.mark.parametrize(
    ("setting", "values", "decode"),
    [
        ("median_frames", (1, 31), {"method": "median"}),
        ("bass_onset_frames", (0.0, 40.0), {"joint_bass": True}),
        ("chord_head_weight", (0.0, 1.0), {"method": "viterbi"}),
    ],
)
def test_predicts_decoding_flags_reach_the_predictor_and_its_labels(
    setting, values, decode, tiny_run, tmp_path, capsys
):
    """``predict --decode.median_frames`` and ``--decode.bass_onset_frames`` (evaluate's too: the same
    loading) were parsed, but no test would have failed had the predictor never been given them: the
    predictor loaded has each value, and predict writes the labels of `ChordPredictor.from_checkpoint`
    given the same decoding. A median over 1 frame and over 31 give other labels. (The tiny model's
    joint_bass path holds no chord of several tones to choose a bass among, so bass_onset_frames does not
    change its labels.)"""
    import argparse

    from audiotrain.chords.lab import lab_text

    _, run_dir = tiny_run
    song = generate_demo_songs(tmp_path / "songs", n_songs=1, seed=7, song_seconds=8)[0].audio_path
    given = [arg for name, value in decode.items() for arg in (f"--decode.{name}", str(value).lower())]
    parser = argparse.ArgumentParser()
    chords._predictor_arguments(parser)
    labels = []
    for value in values:
        argv = ["--checkpoint", str(run_dir), *given, f"--decode.{setting}", str(value), "--tta", "0"]
        assert getattr(chords._load_predictor(parser.parse_args(argv)).decode, setting) == value
        out = tmp_path / f"{value}.lab"
        assert chords.main(["predict", *argv, str(song), "-o", str(out)]) == 0, capsys.readouterr().err
        predictor = ChordPredictor.from_checkpoint(run_dir, decode={**decode, setting: value})
        predictor.tta_shifts = (0,)
        assert out.read_text() == lab_text(predictor.transcribe(song)), value
        labels.append(out.read_text())
    if setting == "median_frames":
        assert len(labels[0].splitlines()) > len(labels[1].splitlines()) > 1


def test_predict_and_evaluate_have_a_flag_for_every_decoding_setting(capsys):
    """Training took --decode.chord_head_weight, predict and evaluate refused it ("unrecognized arguments"),
    though a checkpoint of an older audiotrain had them say "the --decode.* flags set them" for it."""
    from audiotrain.chords.decode import DecodeConfig

    for command in ("predict", "evaluate"):
        assert chords.main([command, "--help"]) == 0
        text = capsys.readouterr().out
        for field in dataclasses.fields(DecodeConfig):
            assert f"--decode.{field.name} " in text, (command, field.name)


def test_predict_folder_skips_unreadable_files_and_reports_them(tiny_run, tmp_path, capsys):
    _, run_dir = tiny_run
    generate_demo_songs(tmp_path / "songs", n_songs=2, seed=7, song_seconds=4)
    (tmp_path / "songs" / "a_broken.wav").write_bytes(np.random.default_rng(0).bytes(3000))
    out_dir = tmp_path / "labs"
    capsys.readouterr()
    code = chords.main(["predict", "--checkpoint", str(run_dir), str(tmp_path / "songs"), "-o", str(out_dir)])
    assert code == 1  # some files were not transcribed
    assert sorted(p.name for p in out_dir.glob("*.lab")) == ["song_000.lab", "song_001.lab"]
    captured = capsys.readouterr()
    assert "wrote 2 .lab files" in captured.out
    assert "a_broken.wav" in captured.err and "skipped 1 audio file" in captured.err
    # Listed once, in words (the summary repeated it under its cause's key: "  1 corrupt: ...a_broken.wav").
    assert captured.err.count("skipped: ") == 1, captured.err
    assert not re.search(r"^  1 [a-z_]+: ", captured.err, re.MULTILINE), captured.err


def test_training_skips_songs_whose_audio_is_broken(tiny_run, tmp_path, capsys):
    root, _ = tiny_run
    data = tmp_path / "songs"
    songs = generate_demo_songs(data, n_songs=4, seed=9, song_seconds=6)
    songs[0].audio_path.write_bytes(b"")  # found by the scan, not hours later by a batch
    run_dir = tmp_path / "run"
    flags = ["train", "--data", str(data), *TINY_FLAGS, "--data.cache_dir", str(root / "cache")]
    capsys.readouterr()
    assert chords.main([*flags, "--run_dir", str(run_dir), "--data.test_fraction", "0"]) == 0
    out = capsys.readouterr().err
    assert (
        "1 audio file that cannot be read or is too short (song skipped)" in out
        and songs[0].audio_path.name in out
    )
    assert "no held-out test songs" in out
    config = json.loads((run_dir / "config.json").read_text())
    assert sum(len(v) for v in config["songs"].values()) == 3


def test_a_window_longer_than_every_song_is_refused_before_any_audio_is_decoded(
    tmp_path, monkeypatch, capsys
):
    data = tmp_path / "songs"
    songs = generate_demo_songs(data, n_songs=4, seed=9, song_seconds=4)
    # The refusal reads audio headers only: computing a song's features (minutes on a large folder) fails here.
    monkeypatch.setattr(ChordFeatureConfig, "load", lambda *a, **k: pytest.fail("decoded audio first"))
    monkeypatch.setattr(ChordFeatureConfig, "compute", lambda *a, **k: pytest.fail("computed features first"))
    argv = ["train", "--data", str(data), "--data.window_frames", "4000", "--run_dir", str(tmp_path / "run"),
            "--data.cache_dir", str(tmp_path / "cache")]  # fmt: skip
    capsys.readouterr()
    assert chords.main(argv) == 2
    _one_error_line(capsys, "--data.window_frames 4000 is longer than every training song", "or less")
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache" / "features").exists()
    # A song whose header cannot be read is passed over by the check (the decode pass names it), not a crash.
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"")
    splits = SongSplits([SongEntry("broken", broken, songs[0].annotation_path), *songs], [], [], "test")
    with pytest.raises(ValueError, match="longer than every training song"):
        chords_train._check_window_fits(splits, TrainingConfig(data=ChordDataConfig(window_frames=4000)))


def test_checkpoint_without_chord_settings_is_rejected(tiny_run, tmp_path):
    _, run_dir = tiny_run
    import shutil

    copy = tmp_path / "ckpt"
    shutil.copytree(run_dir / "checkpoints" / "best", copy)
    state = json.loads((copy / "trainer_state.json").read_text())
    stored_vocabulary = state["module_state"].pop(CHECKPOINT_KEY)["vocabulary"]
    (copy / "trainer_state.json").write_text(json.dumps(state))
    with pytest.raises(ckpt.CheckpointError, match="no chord model settings"):
        ChordPredictor.from_checkpoint(copy)
    state["module_state"][CHECKPOINT_KEY] = {"vocabulary": {"chord_types": ["N", "maj"]}}
    (copy / "trainer_state.json").write_text(json.dumps(state))
    with pytest.raises(
        ckpt.CheckpointError, match=r"trainer_state.json: .*vocabulary: .*different chord vocabulary"
    ):
        ChordPredictor.from_checkpoint(copy)
    state["module_state"][CHECKPOINT_KEY] = {"vocabulary": stored_vocabulary}
    (copy / "trainer_state.json").write_text(json.dumps(state))
    with pytest.raises(ckpt.CheckpointError, match="incomplete.*model_config"):
        ChordPredictor.from_checkpoint(copy)


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda s: s.update(module_state=[1]), "'module_state' must be an object, got list"),
        (lambda s: s["module_state"].update({CHECKPOINT_KEY: [1]}), f"{CHECKPOINT_KEY} must be an object"),
        (lambda s: s["module_state"][CHECKPOINT_KEY].update(vocabulary="x"), ".vocabulary must be an object"),
        (
            lambda s: s["module_state"][CHECKPOINT_KEY].update(window_frames="x"),
            ".window_frames must be an int from 2 to 4096, got 'x'",
        ),
        (
            lambda s: s["module_state"][CHECKPOINT_KEY]["features"].update(hop_length="2048"),
            f"module_state.{CHECKPOINT_KEY}.features.hop_length must be an integer, got '2048'",
        ),
        # A bool stored as a string: "false" is true to Python, so it turned on what it said to turn off.
        (
            lambda s: s["module_state"][CHECKPOINT_KEY]["decode"].update(unknown_chords="false"),
            f"module_state.{CHECKPOINT_KEY}.decode.unknown_chords must be true or false, got 'false'",
        ),
        (
            lambda s: s["module_state"][CHECKPOINT_KEY]["model_config"].update(chord_head="no"),
            ".model_config.chord_head must be true or false, got 'no'",
        ),
        (
            lambda s: s["module_state"][CHECKPOINT_KEY]["features"].update(tuning_correction=1),
            ".features.tuning_correction must be true or false, got 1",
        ),
        (
            lambda s: s["module_state"][CHECKPOINT_KEY]["decode"].update(self_transition="0.5"),
            ".decode.self_transition must be a finite number, got '0.5'",
        ),
        (
            lambda s: s["module_state"][CHECKPOINT_KEY]["decode"].update(silence_db="15"),
            ".decode.silence_db must be a finite number, got '15'",
        ),
        # Settings every checkpoint records that change no weight's shape: today's default (4 heads, relu2)
        # loaded without a word and predicted with another model than the run's 2 heads.
        (
            lambda s: s["module_state"][CHECKPOINT_KEY]["model_config"].pop("n_heads"),
            ".model_config: n_heads is missing: every chord checkpoint records it",
        ),
        (
            lambda s: [
                s["module_state"][CHECKPOINT_KEY]["model_config"].pop(k) for k in ("attention", "dropout")
            ],
            ".model_config: dropout, attention are missing",
        ),
        # A finite gain too large for float32 features: "type_probs holds 1056 non-finite values" before.
        (
            lambda s: s["module_state"][CHECKPOINT_KEY]["features"].update(log_gain=1e308),
            "features.log_gain (--features.log_gain) must be > 0 and at most 1e+12, got 1e+308",
        ),
        (
            lambda s: s["module_state"][CHECKPOINT_KEY]["features"].update(log_gain=-1.0),
            "features.log_gain (--features.log_gain) must be > 0",
        ),
        # Read as an older record's "no bass view", which the model's own setting contradicts.
        (
            lambda s: s["module_state"][CHECKPOINT_KEY]["features"].pop("bass_view_bins"),
            ".features.bass_view_bins is missing (read as 0, as in a record older than the setting), but "
            "model_config.bass_view_bins is 108",
        ),
    ],
)
def test_hand_edited_chord_settings_name_the_file_in_predict_and_resume(tiny_run, tmp_path, edit, fragment):
    """Not an AttributeError, nor a stored setting reported as if the user had typed it as a flag."""
    _, run_dir = tiny_run
    copy = tmp_path / "ckpt"
    shutil.copytree(run_dir / "checkpoints" / "best", copy)
    state = json.loads((copy / "trainer_state.json").read_text())
    edit(state)
    (copy / "trainer_state.json").write_text(json.dumps(state))
    match = re.escape(f"{copy / 'trainer_state.json'}: ") + ".*" + re.escape(fragment)
    with pytest.raises(ckpt.CheckpointError, match=match):
        ChordPredictor.from_checkpoint(copy)
    with pytest.raises(ckpt.CheckpointError, match=match):
        chords_train.check_resume_settings(TrainingConfig(), copy)


def test_balanced_class_weights_follow_the_annotated_durations(tmp_path):
    from audiotrain.recipes.chords.data import balanced_class_weights, chord_type_frequencies
    from audiotrain.recipes.chords.train import build_task

    songs = generate_demo_songs(tmp_path, n_songs=2, seed=3, song_seconds=6)
    seconds = chord_type_frequencies(songs)
    total = sum(read_lab(s.annotation_path)[-1].end for s in songs)
    assert seconds.sum() == pytest.approx(total, rel=1e-6) and seconds[0] > 0  # N lead-in and tail
    weights = balanced_class_weights(seconds)
    present = seconds > 0
    assert weights[present].mean() == pytest.approx(1.0) and np.all(weights[~present] == 0)
    rarest, commonest = np.argmin(np.where(present, seconds, np.inf)), np.argmax(seconds)
    assert weights[rarest] > weights[commonest]
    config = TrainingConfig(model=tiny_model())
    config.loss.balance_classes = True
    task = build_task(config, songs, steps_per_epoch=1)
    np.testing.assert_allclose(np.array(task.loss_fn.class_weights), weights, rtol=1e-6)


def test_balanced_class_weights_are_the_inverse_square_root_of_each_types_seconds(tmp_path):
    """The weights follow the annotated seconds of each chord type, not its count of segments: C:maj
    for 3 s in one segment and A:min for 1 s in two give 3 : 1, so weights 1/sqrt(3/4) : 1/sqrt(1/4) with
    mean 1 over the two types present (inverse square-root frequency, `loss.balance_classes`)."""
    from audiotrain.chords.lab import ChordSegment, write_lab
    from audiotrain.chords.vocabulary import encode_label
    from audiotrain.recipes.chords.data import balanced_class_weights, chord_type_frequencies

    segments = [
        ChordSegment(0.0, 3.0, "C:maj"),
        ChordSegment(3.0, 3.5, "A:min"),
        ChordSegment(3.5, 4.0, "E:min"),
    ]
    write_lab(tmp_path / "a.lab", segments)
    seconds = chord_type_frequencies([SongEntry("a", tmp_path / "a.wav", tmp_path / "a.lab")])
    major, minor = encode_label("C:maj").chord_type, encode_label("A:min").chord_type
    assert (seconds[major], seconds[minor], seconds.sum()) == pytest.approx((3.0, 1.0, 4.0))
    weights = balanced_class_weights(seconds)
    inverse_sqrt = np.array([1 / np.sqrt(3 / 4), 1 / np.sqrt(1 / 4)])
    expected = inverse_sqrt / inverse_sqrt.mean()  # [0.732..., 1.267...]
    np.testing.assert_allclose([weights[major], weights[minor]], expected, rtol=1e-9)
    assert np.count_nonzero(weights) == 2


def test_outputs_never_replace_the_annotations_they_are_scored_against(tiny_run, tmp_path, capsys):
    """`evaluate -o DATA` used to overwrite each song's .lab with its prediction (the next evaluate
    then scored 100%), and `predict DIR -o DIR` replaced x.lab beside x.wav."""
    _, run_dir = tiny_run
    data = tmp_path / "songs"
    songs = generate_demo_songs(data, n_songs=2, seed=5, song_seconds=4)
    before = {s.annotation_path: s.annotation_path.read_bytes() for s in songs}
    ckpt_flags = ["--checkpoint", str(run_dir)]
    capsys.readouterr()
    assert chords.main(["evaluate", *ckpt_flags, "--data", str(data), "-o", str(data)]) == 2
    _one_error_line(capsys, "overwrite the annotation it is scored against", "outside the data folder")
    assert chords.main(["predict", *ckpt_flags, str(data), "-o", str(data)]) == 2
    _one_error_line(capsys, "refusing to write", "song_000.lab", "--overwrite")
    assert (
        chords.main(["predict", *ckpt_flags, str(songs[0].audio_path), "-o", str(songs[0].annotation_path)])
        == 2
    )
    capsys.readouterr()
    assert {p: p.read_bytes() for p in before} == before
    # A .lab beside audio annotated by a .jams would become its annotation (.lab wins): refused too.
    jams = songs[1].annotation_path.with_suffix(".jams")
    write_jams(jams, read_annotation(songs[1].annotation_path))
    songs[1].annotation_path.unlink()
    assert chords.main(["predict", *ckpt_flags, str(songs[1].audio_path), "-o", str(data) + "/"]) == 2
    assert not songs[1].annotation_path.exists()
    # Asked for explicitly, it is done.
    assert chords.main(["predict", *ckpt_flags, str(data), "-o", str(data), "--overwrite"]) == 0
    assert read_lab(songs[0].annotation_path)  # a transcription now


def test_evaluate_never_replaces_annotations_kept_in_another_folder(tiny_run, tmp_path, capsys):
    """`evaluate --annotations LABS -o LABS --overwrite` (and the same with --pairs) wrote each song's
    prediction over its reference annotation (exit 0): --overwrite replaces only what an earlier evaluation
    wrote, and the next evaluation would have scored the model against itself. Refused as -o DATA is."""
    _, run_dir = tiny_run
    audio, labs = tmp_path / "audio", tmp_path / "labs"
    songs = generate_demo_songs(audio, n_songs=2, seed=5, song_seconds=4)
    labs.mkdir()
    for song in songs:
        song.annotation_path.rename(labs / song.annotation_path.name)
    (tmp_path / "pairs.csv").write_text(
        "audio,annotation\n" + "".join(f"audio/{s.audio_path.name},labs/{s.name}.lab\n" for s in songs)
    )
    before = {p: p.read_bytes() for p in labs.iterdir()}
    capsys.readouterr()
    for pairing in (["--annotations", str(labs)], ["--pairs", str(tmp_path / "pairs.csv")]):
        argv = ["evaluate", "--checkpoint", str(run_dir), "--data", str(audio), *pairing, "-o", str(labs)]
        assert chords.main([*argv, "--overwrite"]) == 2
        _one_error_line(capsys, "the annotation it is scored against", "outside the annotations folder")
        assert {p: p.read_bytes() for p in labs.iterdir()} == before


def test_predict_refuses_an_annotation_named_in_another_case(tmp_path, capsys):
    """On a case-insensitive filesystem (macOS's default) SONG.lab is song.lab: writing it would replace the
    reference. Built here on Linux: the guard compares the folder's names casefolded, before any model
    loads."""
    (tmp_path / "song.wav").write_bytes(b"")
    (tmp_path / "song.lab").write_text("0\t1\tC:maj\n")
    argv = ["predict", "--checkpoint", str(tmp_path / "no_run"), str(tmp_path / "song.wav")]
    assert chords.main([*argv, "-o", str(tmp_path / "SONG.lab")]) == 2
    _one_error_line(capsys, "refusing to write", "SONG.lab (beside song.wav)")


def test_predict_output_naming_folders_stems_and_stdout(tiny_run, tmp_path, capsys):
    _, run_dir = tiny_run
    inputs = tmp_path / "in"
    songs = generate_demo_songs(inputs, n_songs=2, seed=6, song_seconds=4)
    for s in songs:
        s.annotation_path.unlink()
    y, sr = sf.read(songs[0].audio_path)
    sf.write(songs[0].audio_path.with_suffix(".flac"), y, sr)  # song_000.wav and song_000.flac
    ckpt_flags = ["--checkpoint", str(run_dir)]
    out = tmp_path / "out"
    capsys.readouterr()
    assert chords.main(["predict", *ckpt_flags, str(inputs), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["song_000.flac.lab", "song_000.wav.lab", "song_001.lab"]
    assert "wrote 3 .lab files" in captured.out and "share a stem" in captured.err
    # One file: -o an existing folder, or a new one written with a trailing slash, gets <stem>.lab in it;
    # a .lab there from the folder's run is replaced only with --overwrite.
    capsys.readouterr()
    assert chords.main(["predict", *ckpt_flags, str(songs[1].audio_path), "-o", str(out)]) == 2
    _one_error_line(capsys, "refusing to replace", str(out / "song_001.lab"), "--overwrite")
    assert chords.main(["predict", *ckpt_flags, str(songs[1].audio_path), "-o", str(out), "--overwrite"]) == 0
    assert chords.main(["predict", *ckpt_flags, str(songs[1].audio_path), "-o", f"{tmp_path}/new/"]) == 0
    assert read_lab(tmp_path / "new" / "song_001.lab") == read_lab(out / "song_001.lab")
    assert not list(tmp_path.glob("*.tmp")) and not list(out.glob("*.tmp"))
    capsys.readouterr()
    assert chords.main(["predict", *ckpt_flags, str(songs[1].audio_path), "--format", "jams"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["file_metadata"]["title"] == "song_001" and document["annotations"][0]["data"]


def test_predict_gives_every_input_its_own_output_and_counts_the_files_written(tiny_run, tmp_path, capsys):
    """a.wav, a.flac and a.wav.flac (a converter's name for another song): a.wav's output kept its suffix,
    a.wav.lab, which is a.wav.flac's plain output, so one song replaced the other and 'wrote 3' left 2."""
    _, run_dir = tiny_run
    inputs = tmp_path / "in"
    songs = generate_demo_songs(inputs, n_songs=2, seed=6, song_seconds=4)
    y, sr = sf.read(songs[0].audio_path)
    sf.write(inputs / "a.wav", y, sr)
    sf.write(inputs / "a.flac", y, sr)
    sf.write(inputs / "a.wav.flac", sf.read(songs[1].audio_path)[0], sr)
    for song in songs:
        song.audio_path.unlink()
        song.annotation_path.unlink()
    out = tmp_path / "out"
    capsys.readouterr()
    assert (
        chords.main(["predict", "--checkpoint", str(run_dir), str(inputs), "-o", str(out), "--tta", "0"]) == 0
    )
    assert sorted(p.name for p in out.iterdir()) == ["a.flac.lab", "a.wav.flac.lab", "a.wav.lab"]
    assert "wrote 3 .lab files" in capsys.readouterr().out
    assert read_lab(out / "a.wav.lab") == read_lab(out / "a.flac.lab") != read_lab(out / "a.wav.flac.lab")


def test_predict_never_writes_over_the_input_audio(tmp_path, capsys):
    """`-o song.wav` was refused as 'beside song.wav ... an annotation', which advised --overwrite, which then
    wrote .lab text over the audio. Refused before any model loads, with or without --overwrite; so is any
    name of audio, in any case, that the loader reads or not (another recording there: Take2.WAV, a .m4a)."""
    song = _write_tone(tmp_path / "victim.wav")
    before = song.read_bytes()
    recordings = [tmp_path / "Take2.WAV", tmp_path / "take3.m4a"]
    for recording in recordings:
        recording.write_bytes(before)
    argv = ["predict", "--checkpoint", str(tmp_path / "no_run"), str(song)]
    for flags in ([], ["--overwrite"]):
        assert chords.main([*argv, "-o", str(song), *flags]) == 2
        _one_error_line(capsys, f"-o {song} is the input audio; write a .lab or .jams")
        for output in [tmp_path / "other.flac", *recordings]:
            assert chords.main([*argv, "-o", str(output), *flags]) == 2
            _one_error_line(capsys, f"is named like an audio file ({output.suffix})", "name a .lab or .jams")
    assert song.read_bytes() == before and not (tmp_path / "other.flac").exists()
    assert all(recording.read_bytes() == before for recording in recordings)


def test_predict_on_a_folder_ignores_hidden_files_and_names_broken_links(tiny_run, tmp_path, capsys):
    """AppleDouble ._x.wav twins were 'corrupt' songs (exit 1 on a folder whose songs were all fine) and a
    deleted song in .Trashes was transcribed; a broken link and a folder named x.wav were passed over
    without a word (exit 0)."""
    _, run_dir = tiny_run
    data = tmp_path / "songs"
    generate_demo_songs(data, n_songs=1, seed=7, song_seconds=4)
    (data / "._song_000.wav").write_bytes(b"\x00\x05\x16\x07Mac OS X  " + b"\x00" * 4000)
    (data / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    shutil.copytree(data, data / ".Trashes" / "501", ignore=shutil.ignore_patterns(".*"))
    argv = ["predict", "--checkpoint", str(run_dir), str(data), "--tta", "0"]
    capsys.readouterr()
    assert chords.main([*argv, "-o", str(tmp_path / "labs")]) == 0
    captured = capsys.readouterr()
    assert [p.name for p in (tmp_path / "labs").rglob("*")] == ["song_000.lab"]
    assert "wrote 1 .lab file " in captured.out and "skipped" not in captured.err
    assert "3 hidden files and folders ignored" in captured.err
    (data / "song_009.wav").symlink_to("/media/usb/song_009.wav")
    (data / "live.wav").mkdir()
    assert chords.main([*argv, "-o", str(tmp_path / "labs2")]) == 1
    err = capsys.readouterr().err
    assert (
        "song_009.wav: file does not exist (a symlink to /media/usb/song_009.wav, which does not exist)"
        in err
    )
    assert "live.wav: path is not a regular file (a folder)" in err and "skipped 2 audio files" in err


def _write_tone(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.1 * np.sin(np.arange(22050) * 0.05).astype(np.float32), 22050)
    return path


def test_audio_too_short_for_the_features_is_skipped_and_named(tiny_run, tmp_path, capsys):
    """A 50-sample file passed the header scan and then failed in a DataLoader worker (train), or
    stopped a whole folder (predict), with 'signal of 50 samples is too short' and no file name."""
    root, run_dir = tiny_run
    data = tmp_path / "songs"
    songs = generate_demo_songs(data, n_songs=4, seed=8, song_seconds=4)
    sf.write(songs[0].audio_path, np.zeros(50, np.float32), 22050)
    flags = ["train", "--data", str(data), *TINY_FLAGS, "--data.cache_dir", str(root / "cache")]
    capsys.readouterr()
    assert chords.main([*flags, "--run_dir", str(tmp_path / "run"), "--data.test_fraction", "0"]) == 0
    out = capsys.readouterr().err
    assert "too short" in out and songs[0].audio_path.name in out
    assert (
        chords.main(["predict", "--checkpoint", str(run_dir), str(data), "-o", str(tmp_path / "labs")]) == 1
    )
    err = capsys.readouterr().err
    assert "song_000.wav: audio is too short" in err
    assert len(list((tmp_path / "labs").glob("*.lab"))) == 3
    assert chords.main(["predict", "--checkpoint", str(run_dir), str(songs[0].audio_path)]) == 2
    _one_error_line(capsys, "song_000.wav: audio is too short")


def test_predict_skips_and_lists_an_output_name_too_long_for_the_file_system(tiny_run, tmp_path, capsys):
    """x.wav and x.flac write x.wav.lab and x.flac.lab: with a 248-byte stem those are 256 and 257 bytes, over
    the usual 255. The write failed with a raw OSError after every song was transcribed, and nothing else was
    written."""
    _, run_dir = tiny_run
    data = tmp_path / "songs"
    stem = "é" * 124  # 248 bytes in UTF-8
    for name in (f"{stem}.wav", f"{stem}.flac", "short.wav"):
        _write_tone(data / name)
    out = tmp_path / "labs"
    assert (
        chords.main(["predict", "--checkpoint", str(run_dir), "--tta", "0", str(data), "-o", str(out)]) == 1
    )
    assert [p.name for p in out.iterdir()] == ["short.lab"]
    captured = capsys.readouterr()
    assert "wrote 1 .lab file " in captured.out and "Traceback" not in captured.err
    assert (
        f"{stem}.flac: cannot write its output {stem}.flac.lab: its name would be 257 bytes" in captured.err
    )
    assert "skipped 2 audio files whose output name or path is too long" in captured.err
    # One file given a name too long: refused before it is transcribed.
    target = tmp_path / f"{stem}long.lab"
    argv = ["predict", "--checkpoint", str(run_dir), str(data / "short.wav"), "-o", str(target)]
    assert chords.main(argv) == 2
    _one_error_line(capsys, f"cannot write {target.name}: its name would be 256 bytes")


def test_predict_on_a_folder_reads_every_format_the_loader_reads_and_lists_the_others(
    tiny_run, tmp_path, capsys
):
    """A .caf or .aifc was transcribed given alone, but passed over in a folder without a word."""
    _, run_dir = tiny_run
    data = tmp_path / "songs"
    tone = 0.1 * np.sin(np.arange(22050) * 0.05).astype(np.float32)
    data.mkdir()
    for name, container in (("logic export.caf", "CAF"), ("take.aifc", "AIFF"), ("old.au", "AU")):
        sf.write(data / name, tone, 22050, format=container)
    (data / "phone.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(100))
    out = tmp_path / "labs"
    assert (
        chords.main(["predict", "--checkpoint", str(run_dir), "--tta", "0", str(data), "-o", str(out)]) == 1
    )
    assert sorted(p.name for p in out.iterdir()) == ["logic export.lab", "old.lab", "take.lab"]
    err = capsys.readouterr().err
    assert "phone.m4a: unsupported audio format" in err and "skipped 1 audio file" in err
    # How to convert it, as the scan of train and evaluate says (predict named no command).
    assert f"ffmpeg -i {data / 'phone.m4a'} {data / 'phone.flac'}" in err


def test_songs_of_digital_silence_under_chords_are_skipped_and_transcribed_as_n(tiny_run, tmp_path, capsys):
    """All-zero audio (a failed export) with a chord annotation was trained on and scored without a word, and
    the model transcribed it as a six-second B:1."""
    root, run_dir = tiny_run
    data = tmp_path / "songs"
    songs = generate_demo_songs(data, n_songs=4, seed=9, song_seconds=6)
    silent = songs[1].audio_path
    sf.write(silent, np.zeros(6 * 22050, np.int16), 22050, subtype="PCM_16")
    flags = ["train", "--data", str(data), *TINY_FLAGS, "--data.cache_dir", str(root / "cache")]
    capsys.readouterr()
    assert chords.main([*flags, "--run_dir", str(tmp_path / "run"), "--data.test_fraction", "0"]) == 0
    out = capsys.readouterr().err
    assert f"song_001: {silent}: audio is digital silence" in out and "names chords" in out, out
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert "song_001" not in sum(config["songs"].values(), [])
    assert chords.main(["evaluate", "--checkpoint", str(run_dir), "--tta", "0", "--data", str(data)]) == 1
    assert f"song_001: {silent}: audio is digital silence" in capsys.readouterr().out
    assert chords.main(["predict", "--checkpoint", str(run_dir), str(silent)]) == 0
    assert capsys.readouterr().out == "0.000000\t6.000000\tN\n"


@pytest.fixture(scope="module")
def silent_song_run(tmp_path_factory):
    """The first run (one epoch) on a fresh cache over 4 songs of which one is digital silence, shared by the
    tests of what it says and of its resume (on a copy of its folder): its flags, its folder, its stderr.
    Built once for both xdist workers (its cache then only read: the resume's songs are the run's)."""
    import contextlib

    def build(root: Path) -> tuple[list[str], str]:
        data = root / "songs"
        songs = generate_demo_songs(data, n_songs=4, seed=9, song_seconds=6)
        sf.write(songs[1].audio_path, np.zeros(6 * 22050, np.int16), 22050, subtype="PCM_16")
        flags = [
            "train", "--data", str(data), *TINY_FLAGS, "--data.test_fraction", "0",
            "--data.cache_dir", str(root / "cache"),
        ]  # fmt: skip
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = chords.main([*flags, "--run_dir", str(root / "run"), "--num_epochs", "1"])
        assert code == 0, err.getvalue()
        return flags, err.getvalue()

    root, (flags, err) = built_once(tmp_path_factory, "silent_song", build)
    return flags, root / "run", err


def test_a_left_out_songs_entry_is_not_counted_as_another_runs_in_the_cache_line(silent_song_run):
    """The first run on a fresh cache, over 4 songs of which one is digital silence, ended with "feature
    cache: this run's 3 songs in ... (4 songs there in all, other runs' too)": no other run had used it; the
    4th entry is the features of its own left-out song."""
    [line] = [line for line in silent_song_run[2].splitlines() if line.startswith("feature cache:")]
    assert re.fullmatch(r"feature cache: this run's 3 songs in \S+/chordcqt-\w+", line), line


def test_a_resume_does_not_call_its_runs_left_out_silent_song_added_nor_its_cache_entry_another_runs(
    silent_song_run, tmp_path, capsys
):
    """A run that left out a silent song, resumed, said '1 song added to DATA since is not used' of it (it was
    there from the start) and ended with 'feature cache: ... (4 songs there in all, other runs' too)': its
    entry is the resumed run's own left-out song, as the first run's cache line now counts it."""
    shared_flags, shared_run, _ = silent_song_run
    shutil.copytree(shared_run, tmp_path / "run", symlinks=True)  # (the resume trains on in its folder)
    flags = [*shared_flags, "--run_dir", str(tmp_path / "run")]
    capsys.readouterr()
    assert chords.main([*flags, "--num_epochs", "2", "--resume", str(tmp_path / "run/checkpoints/last")]) == 0
    err = capsys.readouterr().err
    assert "added" not in err, err
    assert "4 songs in " in err and "(1 left out by its run as silent or undecodable): 2 train / 1 val" in err
    [line] = [line for line in err.splitlines() if line.startswith("feature cache:")]
    assert re.fullmatch(r"feature cache: this run's 3 songs in \S+/chordcqt-\w+", line), line


def test_songs_whose_channels_cancel_in_the_mono_mix_are_skipped_as_such_not_as_a_failed_export(
    tiny_run, tmp_path, capsys
):
    """A stereo song with one channel in inverted polarity (each at -10 dBFS) is silence once mixed to mono:
    train and evaluate skipped it as "digital silence ... (a failed export?)", sending the user after an
    export that was fine, where predict named the channels that cancel."""
    root, run_dir = tiny_run
    data = tmp_path / "songs"
    songs = generate_demo_songs(data, n_songs=4, seed=9, song_seconds=6)
    antiphase = songs[1].audio_path
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(6 * 22050) / 22050)
    sf.write(antiphase, np.stack([tone, -tone], axis=1), 22050)
    flags = ["train", "--data", str(data), *TINY_FLAGS, "--data.cache_dir", str(root / "cache")]
    capsys.readouterr()
    assert chords.main([*flags, "--run_dir", str(tmp_path / "run"), "--data.test_fraction", "0"]) == 0
    said = (
        f"song_001: {antiphase}: audio is digital silence once its 2 channels are mixed to mono, though its "
    )
    said += "loudest channel alone peaks at -10.5 dBFS (a channel in inverted polarity?)"
    err = capsys.readouterr().err
    assert said in err and "failed export" not in err, err
    assert chords.main(["evaluate", "--checkpoint", str(run_dir), "--tta", "0", "--data", str(data)]) == 1
    out = capsys.readouterr().out
    assert said in out and "failed export" not in out, out


def test_the_cqt_of_audio_at_the_silence_level_is_within_the_bound_features_are_checked_with():
    """`ChordFeatureConfig.may_be_silence` reads cached features: it must let every silent recording through
    (its audio is then checked), and it may let only very quiet ones through besides."""
    features = ChordFeatureConfig()
    t = np.arange(3 * features.sr) / features.sr
    level = 10 ** (-90 / 20)
    for hz in (32.7, 65.4, 130.8, 440.0, 2000.0):  # the longest filters, at C1, gain the most: 84 times
        assert features.may_be_silence(
            features.compute((level * np.sin(2 * np.pi * hz * t)).astype(np.float32))
        )
    assert features.may_be_silence(features.compute(np.zeros(len(t), np.float32)))
    assert not features.may_be_silence(
        features.compute((0.01 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    )


def test_log_gain_is_the_gain_inside_the_features_log():
    """--features.log_gain names the cache folder and the checkpoint's settings; were it left out of the
    features themselves, a sweep over it would train every run on log(1 + 100 |CQT|) and measure nothing."""
    y = (0.1 * np.sin(np.arange(22050) * 2 * np.pi * 220 / 22050)).astype(np.float32)
    gain_1, gain_10 = (
        ChordFeatureConfig(tuning_correction=False, bass_view_bins=0, log_gain=gain) for gain in (1.0, 10.0)
    )
    magnitude = np.expm1(gain_1.compute(y))
    np.testing.assert_allclose(gain_10.compute(y), np.log1p(10.0 * magnitude), rtol=1e-4, atol=1e-5)


def tiny_run_argv(tiny_run, run_dir) -> list[str]:
    root, _ = tiny_run
    return [*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--run_dir", str(run_dir)]


def train_tiny_run_with_callback(patch, tiny_run, run_dir, callback, argv=None) -> int:
    """The chord recipe's status for a tiny run into `run_dir` (or the command `argv`) whose Trainer also has
    `callback` (one that stops it with a signal at some point of training)."""
    from audiotrain.recipes.chords import trainer as chords_trainer

    def trainer_with_callback(*args, callbacks=(), **kwargs):
        return Trainer(*args, callbacks=[*callbacks, callback], **kwargs)

    patch.setattr(chords_trainer, "SharedTrainer", trainer_with_callback)
    return chords.main(tiny_run_argv(tiny_run, run_dir) if argv is None else argv)


class CtrlCAfterTheFirstBatch(Callback):
    """Ctrl-C after the first of a tiny run's epoch's two batches."""

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == 1:
            signal.raise_signal(signal.SIGINT)


def test_a_stop_in_the_first_epoch_says_the_batches_it_trained_and_only_the_recipes_command(
    tiny_run, tmp_path, monkeypatch, capsys
):
    """A Ctrl-C in the first epoch counts the batches of that epoch (not "0 full epochs and 1 batch"), and
    the saved checkpoint is followed by the recipe's command line alone: the Trainer's own hint names a
    Python call (``trainer.fit(..., ckpt_path=...)``) a command-line user has no trainer for."""
    run_dir = tmp_path / "stopped"
    assert train_tiny_run_with_callback(monkeypatch, tiny_run, run_dir, CtrlCAfterTheFirstBatch()) == 130
    captured = capsys.readouterr()
    assert "trained 1 batch of epoch 0 (1 step) in " in captured.err, captured.err
    assert "--resume" in captured.err and "trainer.fit(" not in captured.out + captured.err, captured.err


@pytest.fixture
def stopped_mid_epoch(tiny_run, tmp_path, monkeypatch):
    """A tiny run stopped by Ctrl-C after the first of its epoch's two batches: (its argv, its run folder, its
    ``interrupted`` checkpoint)."""
    run_dir = tmp_path / "stopped"
    with monkeypatch.context() as patch:
        assert train_tiny_run_with_callback(patch, tiny_run, run_dir, CtrlCAfterTheFirstBatch()) == 130
    stopped = run_dir / "checkpoints" / "interrupted"
    assert ckpt.read_state(stopped)["data_loader"]["batches_yielded"] == 1
    return tiny_run_argv(tiny_run, run_dir), run_dir, stopped


def test_a_fine_tune_resumes_exactly_after_its_init_from_folder_is_deleted(
    tiny_run, tmp_path, monkeypatch, capsys
):
    """A fine-tune stopped by Ctrl-C whose --init_from folder is deleted since resumes without --init_from:
    its model and feature settings, and its init_from record, come from its own checkpoint, and it ends as
    the uninterrupted fine-tune does. It was refused ("add that --init_from to the command", which named a
    folder that was gone), and repeating every --model.* flag instead resumed it without its record of where
    it started."""
    root, demo_run = tiny_run
    source = tmp_path / "source"
    shutil.copytree(demo_run, source)
    # No --model.* or --features.* flag: they are the checkpoint's.
    fine_tune = [
        "--data.demo_songs", "4", "--data.demo_test_songs", "1", "--data.demo_seconds", "8",
        "--data.window_frames", "32", "--batch_size", "4", "--num_epochs", "2", "--save_every", "0",
        "--progress_bar", "false", "--data.cache_dir", str(root / "cache"),
    ]  # fmt: skip
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert chords.main([*fine_tune, "--init_from", str(source), "--run_dir", str(straight)]) == 0
    argv = [*fine_tune, "--init_from", str(source), "--run_dir", str(stopped)]
    with monkeypatch.context() as patch:
        assert train_tiny_run_with_callback(patch, tiny_run, stopped, CtrlCAfterTheFirstBatch(), argv) == 130
    interrupted = stopped / "checkpoints" / "interrupted"
    assert ckpt.read_state(interrupted)["data_loader"]["batches_yielded"] == 1  # (in the middle of an epoch)
    started = json.loads((straight / "config.json").read_text())["init_from"]
    assert started["checkpoint"] == str((source / "checkpoints" / "best").resolve())
    shutil.rmtree(source)
    capsys.readouterr()
    assert chords.main([*fine_tune, "--run_dir", str(stopped), "--resume", str(interrupted)]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "settings changed since its run" not in err, err
    assert json.loads((stopped / "config.json").read_text())["init_from"] == started
    for name in ("best", "last"):
        resumed, uninterrupted = (run / "checkpoints" / name for run in (stopped, straight))
        assert ckpt.read_state(resumed)["module_state"][CHECKPOINT_KEY]["init_from"] == started
        weights = ckpt.read_arrays(resumed / ckpt.MODEL_FILE)
        expected = ckpt.read_arrays(uninterrupted / ckpt.MODEL_FILE)
        assert weights.keys() == expected.keys()
        for key in expected:
            assert_same_numbers(np.array(weights[key]), np.array(expected[key]), err_msg=f"{name}: {key}")
    _trained_the_same(stopped, straight)


@pytest.mark.parametrize(
    "flags, fragments",
    [
        (["--batch_size", "2"], ["--batch_size 2:", "resume with --batch_size 4"]),
        # 3 windows of 32 frames in each 8 s song, 4 of 24: the Trainer refused it only after config.json
        # recorded the run that never was (with a false "earlier" entry), blaming the checkpoint.
        (["--data.window_frames", "24"], ["--data.window_frames 24:", "resume with --data.window_frames 32"]),
        (
            ["--batch_size", "2", "--data.window_frames", "24"],
            [
                "--batch_size 2 and --data.window_frames 24:",
                "resume with --batch_size 4 --data.window_frames 32",
            ],
        ),
    ],
)
def test_other_batches_mid_epoch_are_refused_before_config_json_is_rewritten(
    stopped_mid_epoch, capsys, flags, fragments
):
    """The Trainer refused them only after config.json recorded the run that never was, saying "a value
    this audiotrain cannot restore" rather than the flag to use."""
    argv, run_dir, stopped = stopped_mid_epoch
    record = (run_dir / "config.json").read_bytes()
    capsys.readouterr()
    assert chords.main([*argv, "--resume", str(stopped), *flags]) == 2
    _one_error_line(capsys, *fragments, "in the middle of an epoch")
    assert (run_dir / "config.json").read_bytes() == record


def test_a_resume_the_trainer_refuses_leaves_config_json_as_it_was(stopped_mid_epoch, capsys):
    """A resume refused as the Trainer restored the checkpoint (here a damaged saved position) had rewritten
    the run's config.json for the run that never was; the README promises it is left as it was."""
    argv, run_dir, stopped = stopped_mid_epoch
    state_file = stopped / ckpt.STATE_FILE
    state = json.loads(state_file.read_text())
    state["data_loader"]["num_samples"] += 1
    state_file.write_text(json.dumps(state))
    record = (run_dir / "config.json").read_bytes()
    capsys.readouterr()
    assert chords.main([*argv, "--resume", str(stopped), "--num_epochs", "3"]) == 2
    err = capsys.readouterr().err
    assert "cannot resume the DataLoader position" in err, err
    assert (run_dir / "config.json").read_bytes() == record


def test_a_run_says_and_records_the_keys_its_pitch_shift_reaches(tmp_path, capsys):
    """--features.max_pitch_shift below 6 drew shifts -k..+k only (none at 0) while --data.pitch_shift said
    "all 12 keys", config.json recorded pitch_shift true and the run printed nothing about it."""
    run = tmp_path / "run"
    flags = [
        "--data.cache_dir",
        str(tmp_path / "cache"),
        "--features.max_pitch_shift",
        "2",
        "--processes",
        "1",
    ]
    capsys.readouterr()
    assert chords.main(["demo", "--preset", "quick_test", "--run_dir", str(run), *flags]) == 0
    out = capsys.readouterr().err
    assert (
        "data.pitch_shift: features.max_pitch_shift 2 reaches 5 of the 12 keys (shifts -2..+2); pass "
        "--features.max_pitch_shift 6 for all 12, or --data.pitch_shift false" in out
    )
    assert json.loads((run / "config.json").read_text())["pitch_shifts"] == [-2, -1, 0, 1, 2]
    # At 0 the augmentation is off, and the run says so.
    data, none = ChordDataConfig(), ChordFeatureConfig(max_pitch_shift=0)
    assert training_pitch_shifts(data, none) == (0,)
    assert pitch_shift_note(data, none).startswith("data.pitch_shift: off, as features.max_pitch_shift 0 ")
    # All 12 keys at the default reach, each once, and nothing to say; nothing either where none is asked for.
    assert training_pitch_shifts(data, ChordFeatureConfig()) == tuple(range(-5, 7))
    assert pitch_shift_note(data, ChordFeatureConfig()) is None
    # Turned off, none at any reach: the default's all 12 keys included.
    off = ChordDataConfig(pitch_shift=False)
    assert training_pitch_shifts(off, ChordFeatureConfig()) == (0,)
    assert training_pitch_shifts(off, ChordFeatureConfig(max_pitch_shift=2)) == (0,)
    assert pitch_shift_note(ChordDataConfig(pitch_shift=False), none) is None


def test_a_run_record_says_how_many_processes_trained_it_and_a_repeat_in_another_count_says_so(
    tiny_run, tmp_path, monkeypatch, capsys
):
    """config.json held `processes: 0` (one per core), not the count it resolved to: repeated on a machine
    with fewer cores, --config RUN/config.json trained in another count, to other weights, without a word."""
    _, run_dir = tiny_run
    record = json.loads((run_dir / "config.json").read_text())
    assert record["processes_used"] == 1 and record["config"]["processes"] == 0
    record["processes_used"] = 2  # as a run on a 2-core machine records it
    out = _notes_of_a_replay(record, tmp_path, monkeypatch, capsys)
    assert "trained in 2 processes, this one trains in 1" in out and "pass --processes 2" in out


def _notes_of_a_replay(record, tmp_path, monkeypatch, capsys):
    """What ``--config`` of the run record `record` says on stderr before it would train (it does not)."""
    (tmp_path / "config.json").write_text(json.dumps(record))

    class Stopped(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stopped  # once the notes are out: only they are asked for

    monkeypatch.setattr(chords, "run_training", stop)
    monkeypatch.setattr(chords, "run_local_job", stop)
    capsys.readouterr()
    with pytest.raises(Stopped):
        chords.main(["--config", str(tmp_path / "config.json"), "--run_dir", str(tmp_path / "again")])
    return capsys.readouterr().err


def test_a_repeat_on_another_blas_thread_count_says_that_it_repeats_the_run_only_approximately(
    tiny_run, tmp_path, monkeypatch, capsys
):
    """A run's config.json records its BLAS threads per process (they change the weights' last bits, as the
    process count does), but --config RUN/config.json on another count (another machine's cores,
    OMP_NUM_THREADS=1) trained to other weights without a word, where another process count had a note."""
    from audiotrain._blas import blas_threads
    from audiotrain._system import usable_cores

    threads = blas_threads()
    if threads is None:
        pytest.skip("no OpenBLAS loaded: MLX's own BLAS records no thread count")
    _, run_dir = tiny_run
    record = json.loads((run_dir / "config.json").read_text())
    assert record["versions"]["blas_threads"] == str(threads)
    assert "BLAS on" not in _notes_of_a_replay(record, tmp_path, monkeypatch, capsys)
    record["versions"]["blas_threads"] = str(threads + 1)  # as a machine with more cores records it
    out = _notes_of_a_replay(record, tmp_path, monkeypatch, capsys)
    assert (
        f"ran its BLAS on {threads + 1} threads per process, this one on {threads}: the same settings then "
        "give other weights" in out
    )
    assert f"set OPENBLAS_NUM_THREADS={threads + 1} to repeat it exactly" in out
    # A run in 2 processes gave each its share of the cores, as a repeat in 2 does: nothing to say there.
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    record["config"]["processes"] = record["processes_used"] = 2
    record["versions"]["blas_threads"] = str(max(1, usable_cores() // 2))
    assert "BLAS on" not in _notes_of_a_replay(record, tmp_path, monkeypatch, capsys)


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])  # Ctrl-C; `timeout`, a cluster's time limit
def test_ctrl_c_before_the_first_validation_still_evaluates_and_prints_the_resume_command(
    tiny_run, tmp_path, monkeypatch, capsys, name
):
    import signal

    from audiotrain.train.callbacks import Callback

    signum = getattr(signal, name)

    class CtrlCAtFirstBatch(Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if trainer.global_step == 1:
                # The Trainer's handler: stop and save (SIGTERM ended the process when nothing handled it).
                assert signal.getsignal(signum) is not signal.SIG_DFL, f"{name} would end the process"
                signal.raise_signal(signum)

    run_dir = tmp_path / "stopped"
    code = train_tiny_run_with_callback(monkeypatch, tiny_run, run_dir, CtrlCAtFirstBatch())
    captured = capsys.readouterr()
    out = captured.out + captured.err  # (the run's summary on stdout, how to continue it on stderr)
    saved = run_dir / "checkpoints" / "interrupted"
    assert code == 128 + signum and not (run_dir / "checkpoints" / "best").exists()  # 130, 143
    assert f"checkpoint:  {saved}" in out and "continue it with:" in out
    assert f"training was interrupted ({'Ctrl-C' if name == 'SIGINT' else name})" in out
    # Only the command line that continues the run, not the Trainer's hint for library users.
    assert "trainer.fit(" not in out and f"Saved {saved}" in out
    assert (run_dir / "evaluation" / "scores.json").is_file()


def test_ctrl_c_after_training_says_what_is_saved_and_how_to_score_it(
    tiny_run, tmp_path, monkeypatch, capsys
):
    from audiotrain.metrics import plots

    def ctrl_c_while_plotting(*args, **kwargs):
        raise KeyboardInterrupt  # as the user's Ctrl-C lands in matplotlib just after training

    monkeypatch.setattr(plots, "plot_training_curves", ctrl_c_while_plotting)  # (imported when plotting)
    run_dir = tmp_path / "run"
    try:
        code = chords.main(tiny_run_argv(tiny_run, run_dir))
    except KeyboardInterrupt:
        code = "a KeyboardInterrupt traceback"
    captured = capsys.readouterr()
    assert code == 130  # as a shell reports a command that Ctrl-C stopped
    best = run_dir / "checkpoints" / "best"
    assert "interrupted (Ctrl-C) after training" in captured.err and "history.json" not in captured.err
    assert f"chords evaluate --checkpoint {best} --data " in captured.err
    assert f"checkpoint:  {best}" in captured.out and (run_dir / "history.json").is_file()


def test_ctrl_c_during_the_evaluation_on_a_data_folder_prints_a_command_that_scores_its_test_songs(
    tiny_run, tmp_path, monkeypatch, capsys
):
    """The command named HELD_OUT_SONGS_FOLDER, which a data folder does not have: its test songs lie among
    the training songs, and `evaluate --data DIR` would score those too."""
    import shlex

    from audiotrain.metrics import plots

    root, _ = tiny_run
    data = tmp_path / "songs"
    generate_demo_songs(data, n_songs=5, seed=9, song_seconds=6)

    def ctrl_c_while_plotting(*args, **kwargs):
        raise KeyboardInterrupt

    run_dir = tmp_path / "run"
    argv = ["train", "--data", str(data), *TINY_FLAGS, "--data.cache_dir", str(root / "cache")]
    monkeypatch.chdir(tmp_path)  # a relative --run_dir: the command names it absolute, to paste anywhere
    with monkeypatch.context() as patch:
        patch.setattr(plots, "plot_training_curves", ctrl_c_while_plotting)
        assert chords.main([*argv, "--run_dir", "run"]) == 130
    err = capsys.readouterr().err
    assert "HELD_OUT_SONGS_FOLDER" not in err
    command = shlex.split(err.split("Score the checkpoint with:")[1].strip().splitlines()[0])
    assert command[:4] == ["python", "-m", "audiotrain.recipes.chords", "evaluate"]
    assert command[command.index("--test_songs_of") + 1] == str(run_dir)
    assert command[command.index("--checkpoint") + 1].startswith(str(run_dir))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert chords.main(command[3:]) == 0  # as pasted, in another folder: the run's own evaluation
    # The run's relative name there: the error says it is not there, not that its config.json is at fault.
    relative = [*command[3:], "--test_songs_of", "run", "-o", str(tmp_path / "elsewhere" / "ev")]
    capsys.readouterr()
    assert chords.main(relative) == 2
    assert "--test_songs_of run: no such folder" in capsys.readouterr().err
    test_songs = json.loads((run_dir / "config.json").read_text())["songs"]["test"]
    scores = json.loads((run_dir / "evaluation" / "scores.json").read_text())
    assert sorted(scores["per_song"]) == sorted(test_songs) and len(test_songs) < 5
    # Another folder, without the run's test songs, is an error naming it.
    other = tmp_path / "other"
    generate_demo_songs(other, n_songs=1, seed=3, song_seconds=6)
    (other / "song_000.wav").rename(other / "x.wav")
    (other / "song_000.lab").rename(other / "x.lab")
    capsys.readouterr()
    assert chords.main([*command[3:6], "--data", str(other), "--test_songs_of", str(run_dir)]) == 2
    assert f"none of its {len(test_songs)} test songs" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])  # Ctrl-C; `timeout`, a cluster's time limit
def test_a_stop_while_the_features_are_computed_is_one_line_and_keeps_them_for_the_next_run(
    tmp_path, monkeypatch, capsys, name
):
    """Ctrl-C there printed a KeyboardInterrupt traceback (two, and prterun's block, in 2 processes), and
    SIGTERM ended the run with status 143 and not a word, after minutes without any output."""
    import signal

    signum = getattr(signal, name)
    data = tmp_path / "songs"
    generate_demo_songs(data, n_songs=4, seed=9, song_seconds=6)
    compute_features = chords_train.feature_function

    def stopping_at_the_third_song(features, cache_root, *advice):
        feature_fn, cache = compute_features(features, cache_root, *advice)
        calls = []

        def feature_fn_that_stops(path):
            calls.append(path)
            if len(calls) == 3:
                assert signal.getsignal(signum) is not signal.SIG_DFL, f"{name} would end the process"
                signal.raise_signal(signum)
            return feature_fn(path)

        return feature_fn_that_stops, cache

    run_dir = tmp_path / "run"
    argv = ["train", "--data", str(data), *TINY_FLAGS, "--data.cache_dir", str(tmp_path / "cache")]
    argv += ["--run_dir", str(run_dir)]
    with monkeypatch.context() as patch:
        patch.setattr(chords_train, "feature_function", stopping_at_the_third_song)
        try:
            code = chords.main(argv)
        except KeyboardInterrupt:  # (what it was: caught, or pytest would take it for the user's Ctrl-C)
            code = "a KeyboardInterrupt traceback"
    assert code == 128 + signum  # 130, 143
    captured = capsys.readouterr()
    assert re.search(r"computing the features of 4 songs \(\d+ s of audio\), kept in the cache", captured.err)
    stopped = "Ctrl-C" if name == "SIGINT" else "SIGTERM"
    said = captured.err[captured.err.index("stopped (") :]  # (after the lines that say what it computes)
    assert said.count("\n") == 1 and said.startswith(
        f"stopped ({stopped}) while computing the songs' features, before training: the features of 2 "
        "of the 4 songs are in the cache"
    ), captured.err
    assert (
        "run the same command again to go on from there; nothing was written to a run folder" in captured.err
    )
    assert not run_dir.exists()
    if name == "SIGINT":  # the same command goes on from there
        assert chords.main(argv) == 0
        out = capsys.readouterr().err
        assert re.search(
            r"computing the features of 2 songs \(\d+ s of audio\); the other 2 songs' features come from",
            out,
        )


def test_a_stop_before_any_features_were_cached_says_none_were_rather_than_zero_kept():
    """The line of a run stopped in the feature pass says what the next run finds in the cache: nothing yet,
    or how many songs' features, which the same command then reads."""
    from audiotrain.recipes.chords.data import FeaturesInterrupted, stopped_before_training

    cache = Path("cache")
    said = stopped_before_training(FeaturesInterrupted(0, 3, cache), "Ctrl-C", "run it again")
    assert f"no song's features were in the cache {cache} yet; nothing was written to a run folder" in said
    assert "kept" not in said and "run it again" not in said, said
    said = stopped_before_training(FeaturesInterrupted(2, 3, cache), "Ctrl-C", "run it again")
    assert f"the features of 2 of the 3 songs are in the cache {cache} and kept: run it again" in said


def test_the_feature_pass_says_what_it_computes_and_how_far_it_is(tmp_path, monkeypatch, capsys):
    """It was silent for minutes on a large folder's first run: a slow pass looked like a hang."""
    from audiotrain.features.cache import FeatureCache
    from audiotrain.recipes.chords import data as chords_data

    songs = []
    for i in range(3):
        sf.write(tmp_path / f"s{i}.wav", np.full(32000, 0.1, np.float32), 16000)
        songs.append(SongEntry(f"s{i}", tmp_path / f"s{i}.wav", tmp_path / f"s{i}.lab"))
    cache = FeatureCache(tmp_path / "cache", "test")

    def feature_fn(path):
        return cache.get_or_compute(path, lambda: np.ones((4, 8), np.float32))

    splits = SongSplits(songs[:1], songs[1:2], songs[2:], "3 songs")
    monkeypatch.setattr(chords_data, "PROGRESS_LINE_SECONDS", 0.0)  # a line per song (stderr a log file)
    said = []
    chords_data.drop_undecodable(splits, feature_fn, cache=cache, log=said.append)
    assert (
        said[0]
        == f"computing the features of 3 songs (6 s of audio), kept in the cache {cache.folder} for later "
        "runs"
    )
    assert said[1].startswith("computed the features of 3 songs in ") and len(said) == 2
    err = capsys.readouterr().err
    assert re.search(r"features: 1 of 3 songs computed in \d+ s, about \d+ s left\n", err), err
    said.clear()
    chords_data.drop_undecodable(splits, feature_fn, cache=cache, log=said.append)
    assert said == [f"features of all 3 songs from the cache {cache.folder}"]


@pytest.mark.parametrize("term, columns", [("xterm", 0), ("dumb", 80)], ids=["0 columns", "TERM=dumb"])
def test_a_terminal_that_cannot_show_a_bar_gets_the_feature_pass_lines(term, columns, tmp_path, monkeypatch):
    """TERM=dumb (Emacs's shell) got the bar's carriage returns, which training's progress leaves out there;
    a terminal of 0 columns (`script` started by cron) showed a blank line for minutes of feature pass."""
    from audiotrain.features.cache import FeatureCache
    from audiotrain.recipes.chords import data as chords_data

    from terminals import a_terminal

    songs = []
    for i in range(3):
        sf.write(tmp_path / f"s{i}.wav", np.full(32000, 0.1, np.float32), 16000)
        songs.append(SongEntry(f"s{i}", tmp_path / f"s{i}.wav", tmp_path / f"s{i}.lab"))
    cache = FeatureCache(tmp_path / "cache", "test")
    splits = SongSplits(songs[:1], songs[1:2], songs[2:], "3 songs")
    monkeypatch.setattr(chords_data, "PROGRESS_LINE_SECONDS", 0.0)  # a line per song
    stream, written = a_terminal(columns)
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.setenv("TERM", term)
    feature_fn = lambda path: cache.get_or_compute(path, lambda: np.ones((4, 8), np.float32))  # noqa: E731
    chords_data.drop_undecodable(splits, feature_fn, cache=cache, log=lambda line: None)
    out = written()
    assert "\r" not in out and "features: 2 of 3 songs computed in " in out, out


@pytest.mark.serial
def test_in_two_processes_the_feature_pass_counts_the_cache_before_any_song_is_computed(tmp_path):
    """Rank 0 looked at the cache while rank 1 was already computing its share: on a cold cache the first line
    said some songs "come from the cache" that rank 1 had just computed."""
    from distributed import describe, run_ranks

    for i in range(4):
        sf.write(tmp_path / f"s{i}.wav", np.full(32000, 0.1, np.float32), 16000)
    job = """
        import sys, time
        from pathlib import Path
        import audiotrain
        import numpy as np
        from audiotrain.datasets.chord_songs import SongEntry
        from audiotrain.distributed import collectives
        from audiotrain.features.cache import FeatureCache
        from audiotrain.recipes.chords import data as chords_data

        folder = Path(sys.argv[1])
        songs = [SongEntry(f"s{i}", folder / f"s{i}.wav", folder / f"s{i}.lab") for i in range(4)]
        cache = FeatureCache(folder / "cache", "test")

        def feature_fn(path):
            return cache.get_or_compute(path, lambda: np.ones((4, 8), np.float32))

        if collectives.rank() == 0:  # slow to look at the cache: time for rank 1 to compute its songs
            in_cache = chords_data._in_cache
            chords_data._in_cache = lambda cache, song: time.sleep(0.5) or in_cache(cache, song)
        said = []
        splits = chords_data.SongSplits(songs[:2], songs[2:3], songs[3:], "4 songs")
        chords_data.drop_undecodable(splits, feature_fn, cache=cache, log=said.append)
        print(said[0] if said else "-")
        """
    ranks = run_ranks(job, 2, args=[str(tmp_path)], timeout=120, cwd=tmp_path)
    assert all(r.returncode == 0 for r in ranks), describe(ranks)
    folder = tmp_path / "cache" / "test"
    assert ranks[0].lines()[-1] == (
        f"computing the features of 4 songs (8 s of audio), kept in the cache {folder} for later runs"
    ), describe(ranks)


@pytest.mark.serial
def test_in_two_processes_each_song_is_computed_once_and_an_undecodable_one_is_dropped(tmp_path):
    """The feature pass shares the songs between the ranks (rank r: songs r, r + 2, ...): a song no rank
    computed would be computed later by every rank that reads it (two writing one cache entry), and its
    audio's failure found only in training. A song that does not decode is dropped whichever rank's it is."""
    from distributed import describe, run_ranks

    for i in range(4):
        sf.write(tmp_path / f"s{i}.wav", np.full(32000, 0.1, np.float32), 16000)
    job = """
        import sys
        from pathlib import Path
        import audiotrain
        import numpy as np
        from audiotrain.audio import AudioError
        from audiotrain.datasets.chord_songs import SongEntry
        from audiotrain.recipes.chords import data as chords_data

        folder = Path(sys.argv[1])
        songs = [SongEntry(f"s{i}", folder / f"s{i}.wav", folder / f"s{i}.lab") for i in range(4)]
        computed = []

        def feature_fn(path):
            computed.append(path.stem)
            if path.stem == "s1":
                raise AudioError(path, "corrupt")
            return np.ones((4, 8), np.float32)

        splits = chords_data.SongSplits(songs[:2], songs[2:3], songs[3:], "4 songs")
        kept, dropped = chords_data.drop_undecodable(splits, feature_fn, log=lambda line: None)
        print("computed", ",".join(computed))
        print("kept", [s.name for s in kept.train], len(dropped))
        """
    ranks = run_ranks(job, 2, args=[str(tmp_path)], timeout=120, cwd=tmp_path)
    assert all(r.returncode == 0 for r in ranks), describe(ranks)
    computed = [r.lines()[-2].split()[1].split(",") for r in ranks]
    # (s1 is decoded once more, on every rank, for the reason the drop gives)
    assert sorted(s for c in computed for s in c if s != "s1") == ["s0", "s2", "s3"], computed
    assert all(r.lines()[-1] == "kept ['s0'] 1" for r in ranks), describe(ranks)


def test_split_by_folder_keeps_each_albums_songs_in_one_part(tmp_path):
    """Every song of an album landed in train and test alike: the timbre of its production then inflated the
    test scores. --data.split_by folder keeps an album's songs together."""
    from audiotrain.recipes.chords.data import folder_splits

    data = tmp_path / "songs"
    for album in range(6):
        generate_demo_songs(data / "artist" / f"album{album}", n_songs=2, seed=album, song_seconds=4)
    config = ChordDataConfig(data_dir=str(data), split_by="folder", val_fraction=0.2, test_fraction=0.2)
    splits, _ = folder_splits(config, seed=0)
    albums = [
        {song.name.rsplit("/", 1)[0] for song in part} for part in (splits.train, splits.val, splits.test)
    ]
    assert all(albums) and sum(len(a) for a in albums) == 6  # each album in one part only
    assert "(split by folder)" in splits.source
    # One folder holds every song: none would be left to validate on.
    config = ChordDataConfig(data_dir=str(data), split_by="top_folder")  # (the artist's)
    with pytest.raises(
        ValueError, match="all in one folder, and --data.split_by top_folder keeps a folder whole"
    ):
        folder_splits(config, seed=0)
    with pytest.raises(
        ValueError, match="data.split_by .--data.split_by. must be one of song, folder, top_folder"
    ):
        ChordDataConfig(split_by="album")


def test_a_grouping_into_two_folders_says_why_the_run_holds_out_no_test_songs(tiny_run, tmp_path, capsys):
    """Two artists split by top folder fill training and validation, so the run held out no test song and
    scored nothing; its last line advised data.test_fraction (0.15 already) or more songs, not the grouping.
    """
    root, _ = tiny_run
    data = tmp_path / "songs"
    for seed, artist in enumerate(("Queen", "Zweieck")):
        generate_demo_songs(data / artist, n_songs=2, seed=seed, song_seconds=6)
    flags = ["train", "--data", str(data), *TINY_FLAGS, "--data.cache_dir", str(root / "cache")]
    capsys.readouterr()
    assert chords.main([*flags, "--run_dir", str(tmp_path / "run"), "--data.split_by", "top_folder"]) == 0
    err = capsys.readouterr().err
    assert "2 train / 2 val / 0 test songs" in err
    reason = "--data.split_by top_folder makes 2 groups of the 4 songs, each kept whole in one part"
    assert err.count(reason) == 2, err  # before training, and where no evaluation follows
    assert "data.test_fraction, or more songs" not in err


def test_a_data_folder_runs_summary_names_its_data_report(tiny_run, tmp_path, capsys):
    """The run folder's summary named the checkpoint, history and predictions but not data_report.txt, the one
    file listing every file the scan skipped and why (the screen lists 20 of a kind)."""
    root, _ = tiny_run
    data = tmp_path / "songs"
    generate_demo_songs(data, n_songs=3, seed=3, song_seconds=6)
    (data / "lost.wav").write_bytes((data / "song_000.wav").read_bytes())  # audio without an annotation
    flags = ["train", "--data", str(data), *TINY_FLAGS, "--data.cache_dir", str(root / "cache")]
    capsys.readouterr()
    assert chords.main([*flags, "--run_dir", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    report = tmp_path / "run" / "data_report.txt"
    assert f"  data report: {report} (what the scan found, and every file it left out with the reason)" in out
    assert "lost.wav" in report.read_text()


def test_a_pairs_files_split_column_without_test_rows_is_named_as_why_no_song_is_tested(tmp_path):
    """A published split without a test part (or whose test songs the scan all skipped) trained without a
    final evaluation, and the run's line blamed data.test_fraction, which a split column does not use."""
    from audiotrain.recipes.chords.data import folder_splits, no_test_songs_reason

    data = tmp_path / "songs"
    generate_demo_songs(data, n_songs=4, seed=4, song_seconds=4)
    pairs = _pairs_with_split(data, {"song_000": "train", "song_001": "train", "song_002": "val"})
    config = ChordDataConfig(data_dir=str(data), pairs=str(pairs))
    splits, screen = folder_splits(config, seed=0)
    assert not splits.test
    reason = no_test_songs_reason(splits, config)
    assert reason.startswith(f"{pairs}'s split column names no test song that the scan kept"), reason
    assert f"note: no test songs, so no final evaluation: {reason}" in screen


def test_a_split_by_song_that_tests_on_an_albums_other_songs_says_so_and_names_split_by_folder(tmp_path):
    """An Isophonics-like tree (artist/album/song) split by song, the default, put an album's songs in train
    and in test alike without a word, and its production's sound flattered the test scores."""
    from audiotrain.recipes.chords.data import folder_splits

    data = tmp_path / "songs"
    for album in range(3):
        generate_demo_songs(data / "artist" / f"album{album}", n_songs=4, seed=album, song_seconds=4)
    _, screen = folder_splits(ChordDataConfig(data_dir=str(data), test_fraction=0.3), seed=0)
    assert "test songs share a folder with training songs (artist/album" in screen, screen
    assert "--data.split_by folder keeps each folder's songs in one part" in screen
    _, screen = folder_splits(ChordDataConfig(data_dir=str(data), split_by="folder"), seed=0)
    assert "share a folder with training songs" not in screen


def test_songs_all_in_one_folder_are_not_told_to_split_by_folder(tmp_path):
    """Billboard's `audio/0003.wav` (or GuitarSet's `audio_mono-mic/`) all in one folder: the note said to
    pass --data.split_by folder, which keeps that folder whole and is then refused (none left to validate
    on). It now names --data.group_pattern, which groups songs by their names, and not split_by folder."""
    from audiotrain.recipes.chords.data import folder_splits

    data = tmp_path / "songs"
    generate_demo_songs(data / "audio", n_songs=8, seed=1, song_seconds=4)
    _, screen = folder_splits(ChordDataConfig(data_dir=str(data), test_fraction=0.3), seed=0)
    assert "all 8 songs lie in one folder (audio), split by song: where some share a sound" in screen, screen
    assert "--data.group_pattern REGEX keeps each group in one part" in screen
    assert "--data.split_by folder keeps" not in screen


def _pairs_with_split(data: Path, parts: dict[str, str]) -> Path:
    """A pairs file beside `data`'s songs (demo songs: song_NNN.wav + .lab), naming each song's part."""
    rows = "".join(f"{name}.wav,{name}.lab,{part}\n" for name, part in parts.items())
    (data / "pairs.csv").write_text(f"audio,annotation,split\n{rows}")
    return data / "pairs.csv"


def test_a_pairs_files_split_column_is_the_split_a_run_trains_on(tmp_path):
    """A researcher comparing with published numbers needs the dataset's own split (Billboard's lists,
    GuitarSet's by player): the recipe only split by a hash of the names. A third column gives it."""
    from audiotrain.recipes.chords.cv import all_songs
    from audiotrain.recipes.chords.data import folder_splits

    data = tmp_path / "songs"
    generate_demo_songs(data, n_songs=5, seed=4, song_seconds=4)
    parts = {
        "song_000": "train",
        "song_001": "test",
        "song_002": "train",
        "song_003": "val",
        "song_004": "test",
    }
    pairs = _pairs_with_split(data, parts)
    splits, _ = folder_splits(ChordDataConfig(data_dir=str(data), pairs=str(pairs)), seed=0)
    given = [[song.name for song in getattr(splits, part)] for part in ("train", "val", "test")]
    assert given == [["song_000", "song_002"], ["song_003"], ["song_001", "song_004"]]
    assert f"(the split {pairs} gives)" in splits.source and splits.parts_given
    # The fractions still say whether validation is wanted: a file with none is refused unless it is not.
    pairs = _pairs_with_split(data, {**parts, "song_003": "train"})
    with pytest.raises(ValueError, match="names no val song, to validate on; mark some rows val, or pass"):
        folder_splits(ChordDataConfig(data_dir=str(data), pairs=str(pairs)), seed=0)
    splits, _ = folder_splits(ChordDataConfig(data_dir=str(data), pairs=str(pairs), val_fraction=0), seed=0)
    assert not splits.val and len(splits.train) == 3
    # A file with val rows and --data.val_fraction 0 would leave those songs out of training: refused.
    pairs = _pairs_with_split(data, parts)
    with pytest.raises(
        ValueError, match="names 1 val song, but --data.val_fraction 0 asks for no validation"
    ):
        folder_splits(ChordDataConfig(data_dir=str(data), pairs=str(pairs), val_fraction=0), seed=0)
    # Songs a pattern groups stay in one part: a split that parts them is refused, naming them.
    pairs = _pairs_with_split(data, parts)
    grouped = ChordDataConfig(data_dir=str(data), pairs=str(pairs), group_pattern=r"^(song_00)[01]$")
    with pytest.raises(
        ValueError, match="puts song_000 in train and song_001 in test, but they are one group"
    ):
        folder_splits(grouped, seed=0)
    # cv makes its own folds: the column would do nothing, so it is refused rather than ignored.
    config = TrainingConfig(data=ChordDataConfig(data_dir=str(data), pairs=str(pairs)))
    with pytest.raises(ValueError, match="cv makes its own folds, so its split column would not be used"):
        all_songs(config)


def test_a_group_pattern_keeps_a_group_in_one_part_of_the_split_and_of_cv_folds(tmp_path):
    """GuitarSet's comp and solo takes of one excerpt (all in one folder) could land in train and test."""
    from audiotrain.recipes.chords.cv import song_folds
    from audiotrain.recipes.chords.data import folder_splits

    data = tmp_path / "songs"
    data.mkdir()
    for excerpt in range(5):
        for take in ("comp", "solo"):
            made = tmp_path / f"{excerpt}{take}"
            generate_demo_songs(made, n_songs=1, seed=excerpt, song_seconds=4)
            for suffix in (".wav", ".lab"):
                (made / f"song_000{suffix}").rename(data / f"00_BN{excerpt}-129-Eb_{take}{suffix}")
    config = ChordDataConfig(data_dir=str(data), group_pattern="^(.*)_(comp|solo)$", val_fraction=0.2)
    splits, _ = folder_splits(config, seed=0)
    excerpts = [{song.name[:-5] for song in getattr(splits, part)} for part in ("train", "val", "test")]
    assert all(excerpts) and sum(len(e) for e in excerpts) == 5  # each excerpt's takes in one part
    assert "(grouped by '^(.*)_(comp|solo)$')" in splits.source
    songs = [*splits.train, *splits.val, *splits.test]
    for fold in song_folds(songs, 5, 0.25, 0, "test", pattern=config.group_pattern):
        excerpts = [{song.name[:-5] for song in part} for part in (fold.train, fold.val, fold.test)]
        assert len(excerpts[2]) == 1 and sum(len(e) for e in excerpts) == 5
    with pytest.raises(ValueError, match="group_pattern .--data.group_pattern. is not a regular expression"):
        ChordDataConfig(group_pattern="^(\\d")
    with pytest.raises(ValueError, match="groups songs in place of data.split_by .--data.split_by folder."):
        ChordDataConfig(group_pattern="^x", split_by="folder")


def test_recordings_sharing_an_annotation_file_stay_in_one_part_and_one_fold_and_the_run_says_so(tmp_path):
    """A pairs file may pair two recordings of one take with its one annotation (GuitarSet's _mic and _mix
    share a .jams). The split and cv's folds went by the names alone: with seed 2 song_000 was a test song
    and song_000_mix a training song, and the test scores measured the model's memory of that take. A
    pairs file's split column is the user's: kept, with a warning where it parts them so."""
    from audiotrain.recipes.chords.cv import all_songs, song_folds
    from audiotrain.recipes.chords.data import folder_splits

    data = tmp_path / "songs"
    generate_demo_songs(data, n_songs=6, seed=4, song_seconds=4)
    shutil.copy(data / "song_000.wav", data / "song_000_mix.wav")  # (a second recording of the take)
    rows = "".join(f"song_00{i}.wav,song_00{i}.lab\n" for i in range(6))
    (data / "pairs.csv").write_text(f"audio,annotation\n{rows}song_000_mix.wav,song_000.lab\n")
    config = ChordDataConfig(data_dir=str(data), pairs=str(data / "pairs.csv"), test_fraction=0.2)
    splits, screen = folder_splits(config, seed=2)
    parts = [[song.name for song in getattr(splits, part)] for part in ("train", "val", "test")]
    assert parts == [
        ["song_001", "song_002", "song_004"],
        ["song_005"],
        ["song_000", "song_000_mix", "song_003"],
    ]
    note = (
        "note: 2 songs that share an annotation file with another song are kept in one {} with it, as "
        "recordings of one performance (song_000 and song_000_mix share song_000.lab)"
    )
    assert screen.splitlines()[1:] == [note.format("part")], screen  # (once, after the scan's count)
    # Where the two are one group already, nothing is merged, and nothing said.
    grouped = ChordDataConfig(data_dir=str(data), pairs=str(data / "pairs.csv"), group_pattern="^(song_000)")
    assert folder_splits(grouped, seed=2)[1].splitlines()[1:] == []
    # cv's folds (by name, seed 0 held out song_000 in fold 2 and song_000_mix in fold 0)
    songs, source, (screen, _) = all_songs(TrainingConfig(data=config))
    assert screen.splitlines()[1:] == [note.format("fold")], screen
    folds = song_folds(songs, 3, 0.2, 0, source)
    held_out = [[song.name for song in fold.test] for fold in folds]
    assert sum(len(names) for names in held_out) == 7
    assert any({"song_000", "song_000_mix"} <= set(names) for names in held_out), held_out
    # A given split stays as written, with a warning naming a recording it trains and one it tests.
    given = {
        "song_000": "train",
        "song_001": "train",
        "song_002": "val",
        "song_003": "train",
        "song_004": "test",
        "song_005": "train",
    }
    rows = "".join(f"{name}.wav,{name}.lab,{part}\n" for name, part in given.items())
    (data / "pairs.csv").write_text(f"audio,annotation,split\n{rows}song_000_mix.wav,song_000.lab,test\n")
    splits, screen = folder_splits(config, seed=2)
    assert [song.name for song in splits.test] == ["song_000_mix", "song_004"]
    assert screen.splitlines()[1:] == [
        f"warning: {data / 'pairs.csv'}'s split column puts song_000 in train and song_000_mix in test, "
        "which share song_000.lab (recordings of one performance?): the test scores then count a take the "
        "model trained on"
    ], screen
    (data / "pairs.csv").write_text(f"audio,annotation,split\n{rows}song_000_mix.wav,song_000.lab,train\n")
    assert folder_splits(config, seed=2)[1].splitlines()[1:] == []  # (both trained: nothing to say)


@pytest.mark.slow  # (two tiny runs: about 17 s on a shared CPU)
def test_a_resume_is_refused_where_the_pairs_files_split_changed(tiny_run, tmp_path, capsys):
    """A resumed run goes on with the parts its run recorded: a split the user edited since would have been
    ignored without a word. It is refused, as other changed data is; the same split resumes."""
    data = tmp_path / "songs"
    generate_demo_songs(data, n_songs=4, seed=9, song_seconds=6)
    parts = {"song_000": "train", "song_001": "train", "song_002": "val", "song_003": "test"}
    pairs = _pairs_with_split(data, parts)
    flags = [*_folder_run_flags(tiny_run, data), "--data.pairs", str(pairs), "--save_every", "0"]
    run_dir = tmp_path / "run"
    assert chords.main([*flags, "--run_dir", str(run_dir), "--num_epochs", "1"]) == 0
    last, again = run_dir / "checkpoints" / "last", tmp_path / "again"
    _pairs_with_split(data, {**parts, "song_001": "test", "song_003": "train"})
    capsys.readouterr()
    assert chords.main([*flags, "--run_dir", str(again), "--resume", str(last)]) == 2
    err = capsys.readouterr().err
    assert f"cannot resume from {last}: the split column of the pairs file puts songs in other parts" in err
    assert "Traceback" not in err and not again.exists(), err
    # The same train songs, the val and test song swapped: scored on the songs it validated on.
    _pairs_with_split(data, {**parts, "song_002": "test", "song_003": "val"})
    assert chords.main([*flags, "--run_dir", str(again), "--resume", str(last)]) == 2
    err = capsys.readouterr().err
    assert "the split column of the pairs file puts songs in other parts" in err and not again.exists(), err
    _pairs_with_split(data, parts)
    assert chords.main([*flags, "--run_dir", str(again), "--resume", str(last)]) == 0


def test_a_song_the_split_column_does_not_list_is_in_no_part_trained_or_scored(tiny_run, tmp_path, capsys):
    """A song a pairs file with a split column does not list, paired by its name (song_003.wav beside
    song_003.lab), crashed train with a bare KeyError: the column gives it no part. It is in no part: left
    out of training, validation and test, counted and listed with its reason where the scan says what it left
    out; evaluate on that pairs file leaves it out too, listed among the songs skipped."""
    data = tmp_path / "songs"
    generate_demo_songs(data, n_songs=4, seed=9, song_seconds=6)
    pairs = _pairs_with_split(data, {"song_000": "train", "song_001": "val", "song_002": "test"})
    run_dir = tmp_path / "run"
    flags = [*_folder_run_flags(tiny_run, data), "--data.pairs", str(pairs), "--num_epochs", "1"]
    capsys.readouterr()
    assert chords.main([*flags, "--run_dir", str(run_dir)]) == 0
    err = capsys.readouterr().err
    why = (
        f"{data / 'song_003.wav'}: paired with song_003.lab by its name, but pairs.csv's split column lists "
        "it in no part"
    )
    # (counted as every kind of file left out is, under the count of the songs used)
    group = (
        "1 song paired by its name that the pairs file's split column lists in no part (song skipped: "
        "neither trained nor scored; give it a row to use it)"
    )
    assert f"{data}: 3 annotated songs\n  {group}:\n    {why}\n" in err, err
    assert "3 songs in" in err and "1 train / 1 val / 1 test songs" in err, err
    assert why in (run_dir / "data_report.txt").read_text()
    recorded = json.loads((run_dir / "config.json").read_text())["songs"]
    assert recorded == {"train": ["song_000"], "val": ["song_001"], "test": ["song_002"]}
    # evaluate on the same pairs file scores the songs it lists, and names the one left out.
    argv = ["evaluate", "--checkpoint", str(run_dir), "--data", str(data), "--pairs", str(pairs)]
    assert chords.main(argv) == 1  # (as for every song skipped: the scores do not cover the folder)
    captured = capsys.readouterr()
    assert "3 songs scored" in captured.out and f"- song_003: {why}" in captured.out, captured.out
    assert group in captured.err and "Traceback" not in captured.err


def test_a_run_whose_every_val_song_is_left_out_is_refused_not_trained_without_validation():
    """Validation (the best checkpoint, early stopping) needs a val song: where every one fails to decode, the
    run is refused, naming them, rather than trained without a word on no validation at all."""
    from audiotrain.audio import AudioError
    from audiotrain.recipes.chords import data as chords_data

    songs = [SongEntry(f"s{i}", Path(f"s{i}.wav"), Path(f"s{i}.lab")) for i in range(3)]

    def feature_fn(path):
        if path.stem == "s2":
            raise AudioError(path, "corrupt")
        return np.ones((4, 8), np.float32)

    with pytest.raises(ValueError, match="too few songs left to train and validate") as refused:
        chords_data.drop_undecodable(chords_data.SongSplits(songs[:2], songs[2:], [], "3 songs"), feature_fn)
    assert "s2: " in str(refused.value)
    # A run that validates on no song (--data.val_fraction 0) trains on the songs left.
    kept, dropped = chords_data.drop_undecodable(chords_data.SongSplits(songs, [], [], "3 songs"), feature_fn)
    assert [song.name for song in kept.train] == ["s0", "s1"] and len(dropped) == 1


def test_a_song_whose_audio_does_not_decode_is_skipped_and_listed_before_training(tiny_run, tmp_path, capsys):
    import soundfile as sf

    root, _ = tiny_run
    data = tmp_path / "songs"
    generate_demo_songs(data, n_songs=4, seed=9, song_seconds=6)
    audio, sr = sf.read(data / "song_000.wav", dtype="float32")
    audio[1000:1100] = np.nan  # the header is fine: only decoding finds it
    sf.write(data / "broken.wav", audio, sr, subtype="FLOAT")
    (data / "broken.lab").write_text((data / "song_000.lab").read_text())
    for i in range(22):  # more than the screen lists of a kind
        (data / f"orphan{i:02d}.wav").write_bytes((data / "song_000.wav").read_bytes())
    run_dir = tmp_path / "run"
    flags = ["train", "--data", str(data), *TINY_FLAGS, "--data.cache_dir", str(root / "cache")]
    assert chords.main([*flags, "--run_dir", str(run_dir)]) == 0
    out = capsys.readouterr().err
    assert "1 song skipped, their audio does not decode" in out and "broken" in out
    # The screen lists 20 files of a kind; the run folder's data_report.txt every one, with the song that
    # failed to decode (the list was cut at 20, and written nowhere).
    assert "orphan19.wav" in out and "orphan20.wav" not in out
    assert "... and 2 more (every one is listed in the run folder's data_report.txt)" in out
    report = (run_dir / "data_report.txt").read_text()
    assert all(f"orphan{i:02d}.wav" in report for i in range(22)) and "... and" not in report
    assert "1 song whose audio does not decode or is silent under chords:\n    broken: " in report
    # The split line adds up: 5 songs found, 1 left out, 4 in the splits.
    split = re.search(
        r"5 songs in \S+ \(1 left out, listed above\): (\d+) train / (\d+) val / (\d+) test", out
    )
    assert split and sum(int(n) for n in split.groups()) == 4, out
    config = json.loads((run_dir / "config.json").read_text())
    assert "broken" not in sum(config["songs"].values(), [])


# ---- command-line fixes: config numbers, data folder, abbreviations, help, early checks, early stopping -----


def test_yaml_exponent_without_a_dot_is_a_number(tmp_path):
    """PyYAML reads `1e-3` as a string; the recipe used to reject it as 'must be float'."""
    config_file = tmp_path / "run.yaml"
    config_file.write_text("learning_rate: 1e-3\nbatch_size: '8'\n")
    config = load_config_file(TrainingConfig(), config_file)
    assert config.learning_rate == 1e-3 and config.batch_size == 8
    config_file.write_text("learning_rate: fast\n")
    with pytest.raises(ValueError, match=r"run\.yaml: field 'learning_rate' must be float"):
        load_config_file(TrainingConfig(), config_file)


def test_train_data_folder_from_the_config_file_or_the_command_line(tmp_path, monkeypatch, capsys):
    used = []
    monkeypatch.setattr(
        chords, "run_training", lambda config, *a, **k: used.append(config.data.data_dir) or 1 / 0
    )
    from_file, from_flag = tmp_path / "from_file", tmp_path / "from_flag"
    from_file.mkdir(), from_flag.mkdir()
    config_file = tmp_path / "run.yaml"
    config_file.write_text(f"data:\n  data_dir: {from_file}\n")
    for argv, expected in (
        (["--config", str(config_file)], from_file),
        (["--config", str(config_file), "--data.data_dir", str(from_flag)], from_flag),  # the CLI wins
        (["--config", str(config_file), "--data", str(from_flag)], from_flag),
        (["--data.data_dir", str(from_flag)], from_flag),
    ):
        with pytest.raises(ZeroDivisionError):
            chords.main(["train", *argv])
        assert used.pop() == str(expected), argv
    config_file.write_text("num_epochs: 3\n")
    for argv, fragments in (
        (
            ["--config", str(config_file)],
            ["no data folder", "--data DIR", "--data.data_dir", "data.data_dir in"],
        ),
        ([], ["no data folder", "--data DIR", "--config"]),
        (["--data", str(from_file), "--data.data_dir", str(from_flag)], ["name different folders"]),
        (["--data.data_dir", str(tmp_path / "nope")], ["--data.data_dir", "nope: no such folder"]),
    ):
        status = chords.main(["train", *argv])
        assert status == 2
        _one_error_line(capsys, *fragments)
    assert not used


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["train", "--data", ".", "--num_epoch", "3"], "--num_epoch"),
        (["--learning", "0.1"], "--learning"),
        (["evaluate", "--checkpoint", "x", "--data", ".", "--allow_gap"], "--allow_gap"),
        (["predict", "--checkpoint", "x", "song.wav", "--overwr"], "--overwr"),
    ],
)
def test_abbreviated_flags_are_refused(argv, flag, monkeypatch, capsys):
    monkeypatch.setattr(chords, "run_training", lambda *a, **k: pytest.fail("an abbreviation was accepted"))
    status = chords.main(argv)
    assert status == 2
    _one_error_line(capsys, f"unrecognized arguments: {flag}")


@pytest.mark.parametrize("command", ["demo", "train", "evaluate", "predict"])
def test_every_option_has_help_and_fixed_values_are_listed(command, monkeypatch, capsys):
    parsers = []

    class Recording(chords.SettingsParser):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            parsers.append(self)

    monkeypatch.setattr(chords, "SettingsParser", Recording)
    status = chords.main([command, "--help"])
    assert status == 0
    text = capsys.readouterr().out
    (parser,) = parsers
    for action in parser._actions:
        described = (action.help or "").split("(default:")[0].strip()
        assert described, f"{action.option_strings} has no help"
        if action.choices:
            assert "{" + ",".join(action.choices) + "}" in text, action.option_strings
    assert "{viterbi,median,argmax}" in text  # --decode.method, in every command
    assert "output X (unknown chord)" in text


def test_evaluate_refuses_an_existing_output_file_before_reading_audio(
    tiny_run, tmp_path, monkeypatch, capsys
):
    _, run_dir = tiny_run
    generate_demo_songs(tmp_path / "songs", n_songs=1, seed=4, song_seconds=4)
    taken = tmp_path / "scores.txt"
    taken.write_text("keep me")
    monkeypatch.setattr(chords, "scan_song_folder", lambda *a, **k: pytest.fail("read the songs first"))
    capsys.readouterr()
    argv = ["evaluate", "--checkpoint", str(run_dir), "--data", str(tmp_path / "songs"), "-o", str(taken)]
    assert chords.main(argv) == 2
    _one_error_line(capsys, "-o", "scores.txt is a file", "into a folder")  # the flag, and what it expected
    assert taken.read_text() == "keep me"


def test_early_stopping_is_announced(tiny_run, tmp_path, capsys):
    root, _ = tiny_run
    flags = [*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--save_every", "0"]
    capsys.readouterr()
    argv = [
        *flags,
        "--num_epochs",
        "4",
        "--patience",
        "1",
        "--min_delta",
        "100",
        "--run_dir",
        str(tmp_path / "r"),
    ]
    assert chords.main(argv) == 0
    out = capsys.readouterr().err
    (line,) = [line for line in out.splitlines() if "early stopping" in line]
    assert "epoch 1" in line and "val_loss" in line and "patience 1" in line and "best val_loss" in line


def test_ctrl_c_before_the_first_step_saves_a_checkpoint_the_printed_command_continues(
    tiny_run, tmp_path, monkeypatch, capsys
):
    import signal

    from audiotrain.train.callbacks import Callback

    class CtrlCAtTrainStart(Callback):
        def on_train_start(self, trainer, module):
            signal.raise_signal(signal.SIGINT)  # the Trainer's handler: stop before the first step

    run_dir = tmp_path / "stopped"
    argv = tiny_run_argv(tiny_run, run_dir)
    with monkeypatch.context() as patch:
        assert train_tiny_run_with_callback(patch, tiny_run, run_dir, CtrlCAtTrainStart()) == 130
    out = capsys.readouterr().err
    # The Trainer saves the state it started from: the printed command continues the run from there.
    assert (run_dir / "checkpoints" / "last" / "model.safetensors").is_file()
    assert "continue it with:" in out and "does not exist" not in out
    assert chords.main([*argv, "--resume", str(run_dir / "checkpoints" / "last")]) == 0


def test_predict_a_folder_given_as_dot_or_dotdot_writes_beside_it(tiny_run, tmp_path, monkeypatch, capsys):
    _, run_dir = tiny_run
    generate_demo_songs(tmp_path / "songs", n_songs=1, seed=7, song_seconds=4)
    (tmp_path / "songs" / "deeper").mkdir()
    monkeypatch.chdir(tmp_path / "songs")
    assert chords.main(["predict", "--checkpoint", str(run_dir), "."]) == 0
    assert (tmp_path / "songs-chords" / "song_000.lab").is_file()
    assert chords.main(["predict", "--checkpoint", str(run_dir), "deeper/..", "--overwrite"]) == 0
    assert not (tmp_path / "songs" / "deeper" / "..-chords").exists()
    # A folder needs an output folder: a file given as -o is refused, saying so.
    (tmp_path / "out.lab").write_text("")
    capsys.readouterr()
    assert chords.main(["predict", "--checkpoint", str(run_dir), ".", "-o", str(tmp_path / "out.lab")]) == 2
    _one_error_line(capsys, "is a file; a folder input (.) needs an output folder")


def test_the_run_config_names_the_data_folder_from_anywhere(tiny_run, tmp_path, monkeypatch):
    used = []
    monkeypatch.setattr(chords, "run_training", lambda config, *a, **k: used.append(config) or 1 / 0)
    (tmp_path / "songs").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ZeroDivisionError):
        chords.main(["train", "--data", "songs"])
    # config.json holds the folder as an absolute path: --config RUN/config.json works from another folder.
    assert used[0].data.data_dir == str(tmp_path.resolve() / "songs")


def test_a_refused_resume_under_local_processes_is_said_once_before_any_rank_starts(
    tiny_run, tmp_path, monkeypatch, capsys
):
    from audiotrain.distributed.local import LocalPlan

    root, run_dir = tiny_run
    monkeypatch.setattr(chords, "plan_local_processes", lambda *a, **k: LocalPlan(2, mpi=object()))
    monkeypatch.setattr(chords, "run_local_job", lambda *a, **k: pytest.fail("started the ranks"))
    last = run_dir / "checkpoints" / "last"
    argv = [*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--run_dir", str(tmp_path / "r")]
    assert chords.main([*argv, "--resume", str(last), "--num_epochs", "5", "--model.d_model", "48"]) == 2
    _one_error_line(capsys, "model.d_model (32 there, 48 here)")


# ---- the cache: demo sets and features ---------------------------------------------------------------------


def test_demo_sets_of_other_sample_rates_live_side_by_side(tmp_path):
    """Runs with another --features.sr each re-rendered the other's songs into one folder, under a run
    reading them: every parameter of a set is now in its folder's name."""
    from audiotrain.recipes.chords.data import demo_splits

    data = ChordDataConfig(
        cache_dir=str(tmp_path), demo_songs=2, demo_test_songs=1, demo_seconds=4.0, demo_styles=("train",)
    )
    song = demo_splits(data, sr=8000).test[0].audio_path
    before = song.stat()
    other = demo_splits(data, sr=16000).test[0].audio_path
    assert other.parent != song.parent and sf.info(str(other)).samplerate == 16000
    assert demo_splits(data, sr=8000).test[0].audio_path == song and sf.info(str(song)).samplerate == 8000
    after = song.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # not rendered again
    assert "-8000Hz-" in song.parent.name and "-16000Hz-" in other.parent.name


def test_a_cache_folder_that_cannot_be_written_is_one_error_line(tmp_path, make_read_only, capsys):
    """Features are computed in memory then (tests/test_feature_cache.py), but the demo songs need the disk:
    a read-only cache folder gave a raw traceback."""
    make_read_only(tmp_path)
    assert chords.main(["demo", *TINY_FLAGS, "--data.cache_dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert "cannot write the demo songs" in err and "--data.cache_dir" in err and "Traceback" not in err


def test_a_run_whose_feature_cache_cannot_be_written_says_the_features_were_not_kept(
    tmp_path, make_read_only, capsys
):
    """Its last line said "feature cache: this run's 4 songs in <the read-only folder> (0 songs there in all,
    other runs' too)", which contradicts itself (the warning before it said the folder cannot be written)."""
    data = tmp_path / "songs"
    generate_demo_songs(data, n_songs=4, seed=9, song_seconds=6)
    cache = tmp_path / "cache"
    cache.mkdir()
    make_read_only(cache)
    flags = ["train", "--data", str(data), *TINY_FLAGS, "--num_epochs", "1", "--data.cache_dir", str(cache)]
    assert chords.main([*flags, "--run_dir", str(tmp_path / "run"), "--data.test_fraction", "0"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("feature cache:")]
    assert len(lines) == 1 and re.fullmatch(
        rf"feature cache: {re.escape(str(cache / 'features'))}/chordcqt-\w+ cannot be written \((Read-only file system|Permission "
        r"denied)\): the features of this run's 4 songs that it lacked were computed in memory and not kept",
        lines[0],
    ), lines


def test_a_given_cache_dir_that_cannot_be_written_is_not_promised_and_its_advice_is_the_flag(
    tmp_path, make_read_only, capsys, monkeypatch
):
    """`--config RUN/config.json` pins the cache folder its run recorded (absolute). Where that folder could not
    be written, the warning advised AUDIOTRAIN_CACHE_DIR, which the recorded folder overrides, and the first
    line said the features were "kept in the cache ... for later runs"."""
    data = tmp_path / "songs"
    generate_demo_songs(data, n_songs=4, seed=9, song_seconds=6)
    cache = tmp_path / "cache"
    cache.mkdir()
    make_read_only(cache)
    monkeypatch.setenv("AUDIOTRAIN_CACHE_DIR", str(tmp_path / "writable"))  # the advice the user followed
    flags = ["train", "--data", str(data), *TINY_FLAGS, "--num_epochs", "1", "--data.cache_dir", str(cache)]
    with pytest.warns(UserWarning, match="cannot be written") as caught:
        assert chords.main([*flags, "--run_dir", str(tmp_path / "run"), "--data.test_fraction", "0"]) == 0
    [warned] = [str(w.message) for w in caught if "feature cache" in str(w.message)]
    assert "pass --data.cache_dir DIR with a writable folder" in warned, warned
    assert "point AUDIOTRAIN_CACHE_DIR" not in warned, warned
    err = capsys.readouterr().err
    [computing] = [line for line in err.splitlines() if line.startswith("computing the features")]
    assert "for later runs" not in computing and "in memory only" in computing, computing
    # With no cache_dir given, the variable moves the cache: it is advised.
    assert "point AUDIOTRAIN_CACHE_DIR" in unwritable_cache_advice(ChordDataConfig())


def test_a_cache_entry_that_cannot_be_the_features_is_computed_again(tmp_path):
    """A valid .npy of the wrong shape was served as a hit (and blamed on feature_fn later), and one full of
    NaN went straight into training. An entry one row short (a bass view cut short) or with frames past the
    song's end (another song's, another tool's) is not this song's features either."""
    from audiotrain.recipes.chords.data import feature_function

    song = tmp_path / "song.wav"
    sf.write(str(song), np.sin(np.arange(22050) * 0.1).astype(np.float32), 22050)
    features = ChordFeatureConfig()
    feature_fn, cache = feature_function(features, tmp_path / "cache")
    good = np.array(feature_fn(song))
    assert good.shape[0] == features.feature_rows
    one_row_short, two_frames_more = good[1:], np.concatenate([good, good[:, :2]], axis=1)
    for wrong in (
        np.zeros((3, 3), np.float32),
        np.arange(9),
        np.full_like(good, np.nan),
        one_row_short,
        two_frames_more,
    ):
        np.save(cache.path_for(song), wrong)
        _, cache = feature_function(features, tmp_path / "cache")  # a later run
        np.testing.assert_array_equal(cache.get_or_compute(song, lambda: good), good)
        assert (cache.hits, cache.misses, cache.replaced) == (0, 1, 1)
    _, cache = feature_function(features, tmp_path / "cache")
    cache.get_or_compute(song, lambda: pytest.fail("computed again"))
    assert (cache.hits, cache.report()["replaced"]) == (1, 0)


def test_the_runs_cache_lines_count_damaged_and_wrong_entries_as_computed_again(tmp_path):
    """With 2 of 3 entries damaged (one a whole file of NaN, one garbage), the feature pass said "features of
    all 3 songs from the cache", and the feature cache line counted rank 0's wrong entries alone (under data
    parallel every rank computes its share), as "1 wrong entries"."""
    from audiotrain.recipes.chords.data import drop_undecodable, feature_function

    songs = []
    for i in range(3):
        sf.write(tmp_path / f"s{i}.wav", np.sin(np.arange(22050) * 0.1 * (i + 1)).astype(np.float32), 22050)
        songs.append(SongEntry(f"s{i}", tmp_path / f"s{i}.wav", tmp_path / f"s{i}.lab"))
    splits = SongSplits(songs[:1], songs[1:2], songs[2:], "3 songs")
    features = ChordFeatureConfig()
    feature_fn, cache = feature_function(features, tmp_path / "cache")
    drop_undecodable(splits, feature_fn, cache=cache, log=lambda line: None)
    np.save(cache.path_for(songs[0].audio_path), np.full_like(feature_fn(songs[0].audio_path), np.nan))
    cache.path_for(songs[1].audio_path).write_bytes(b"\x93NUMPY garbage")
    feature_fn, cache = feature_function(features, tmp_path / "cache")  # a later run
    said = []
    drop_undecodable(splits, feature_fn, cache=cache, log=said.append)
    assert said[0].startswith("computing the features of 2 songs (2 s of audio); the other 1 song's features")
    folder = cache.folder
    line = f"feature cache: this run's 3 songs in {folder}; 1 wrong entry computed again"
    assert chords_train._cache_line(cache, splits) == line
    # Under data parallel the other ranks' wrong entries count too.
    assert chords_train._cache_line(cache, splits, others_replaced=2).endswith(
        "; 3 wrong entries computed again"
    )


def test_a_cache_entry_with_fewer_frames_than_the_song_is_computed_again(tmp_path):
    """A valid entry with the right rows and a third of the frames was served: the run trained on 1.9 s of a
    6 s song, and warned that the annotation ran past the features. The header gives the frames."""
    from audiotrain.recipes.chords.data import feature_function

    song = tmp_path / "song.wav"
    sf.write(str(song), np.sin(np.arange(3 * 22050) * 0.1).astype(np.float32), 22050)
    features = ChordFeatureConfig()
    feature_fn, cache = feature_function(features, tmp_path / "cache")
    whole = np.array(feature_fn(song))
    np.save(cache.path_for(song), np.ascontiguousarray(whole[:, :10]))
    feature_fn, cache = feature_function(features, tmp_path / "cache")  # a later run
    np.testing.assert_array_equal(feature_fn(song), whole)
    assert (cache.hits, cache.replaced) == (0, 1)
    feature_fn(song)
    assert cache.hits == 1  # a whole entry is served, its header read once


@pytest.mark.slow
def test_training_on_songs_whose_names_the_locale_cannot_encode(tmp_path):
    """Under ``LC_ALL=C`` with Python's UTF-8 mode off every song under ``My Songs ☃/`` was 'corrupt or
    truncated'; past that, the feature cache, the run record's digest of the song names and the checkpoints
    each failed on the names (surrogate escapes, which UTF-8 cannot encode)."""
    import os
    import subprocess
    import sys

    data = tmp_path / "My Songs ☃"
    for entry in generate_demo_songs(data, n_songs=4, seed=9, song_seconds=4):
        for path in (entry.audio_path, entry.annotation_path):
            path.rename(path.with_name(f"chanson é {path.name}"))
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    env["AUDIOTRAIN_CACHE_DIR"] = str(tmp_path / "cache")
    run = tmp_path / "run ☃"
    argv = ["train", "--preset", "quick_test", "--data", str(data), "--run_dir", str(run), "--processes", "1"]
    done = subprocess.run(
        [sys.executable, "-X", "utf8=0", "-m", "audiotrain.recipes.chords", *argv],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (run / "checkpoints" / "best" / "model.safetensors").is_file()
    assert len(list((run / "evaluation").glob("chanson é *.lab"))) == 1


def test_the_validation_loader_holds_every_frame_of_each_val_song_once_unshifted(tmp_path):
    """Validation (model selection, early stopping) measures the val songs as they are: chunks covering each
    song's frames once, each with the song's own labels and unshifted features, the same every epoch; not
    random pitch-shifted training windows (which are shuffled). Bin b of frame t holds 1000 t + b."""
    from audiotrain.chords.lab import ChordSegment, write_lab
    from audiotrain.recipes.chords import data

    data_config, features = ChordDataConfig(), ChordFeatureConfig()
    config = data.song_config(data_config, features)
    songs = []
    for name, seconds in (("a", 5.0), ("b", 3.0)):
        write_lab(
            tmp_path / f"{name}.lab", [ChordSegment(0.0, 1.0, "N"), ChordSegment(1.0, seconds, "A:min")]
        )
        songs.append(SongEntry(name, tmp_path / f"{name}.wav", tmp_path / f"{name}.lab"))

    def feature_fn(path):
        frames = int(read_lab(path.with_suffix(".lab"))[-1].end * features.frame_rate) + 3
        return np.arange(config.total_bins, dtype=np.float32)[:, None] + 1000 * np.arange(frames)[None, :]

    splits = SongSplits(train=songs[:1], val=songs, test=[], source="2 songs")
    train_loader, val_loader, _ = data.make_loaders(splits, feature_fn, data_config, features, 4, seed=3)
    # Training draws its windows in a new order every epoch; validation reads them in order. A job with fewer
    # windows than one batch keeps its short batch (dropped, it would train 0 steps).
    assert train_loader.shuffle and not val_loader.shuffle
    assert len(train_loader.dataset) < 4 and len(train_loader) == 1
    val_set = val_loader.dataset
    for song in range(2):
        rows = feature_fn(songs[song].audio_path)
        items = [val_set[i] for i in range(len(val_set)) if val_set[i]["song_index"] == song]
        assert sum(int(item["mask"].sum()) for item in items) == rows.shape[1]
        for item in items:
            start, real = int(item["start_frame"]), int(item["mask"].sum())
            expected = crop_bins(rows[:, start : start + real], config, 0)
            np.testing.assert_array_equal(item["features"][:real], expected)


def test_the_training_windows_and_shifts_follow_the_runs_seed(tmp_path):
    """`--train.seed` decides which window and shift each training item draws (as well as the loader's
    order): two seeds train on other windows, one seed on the same ones. Bin b of frame t holds 1000 t + b,
    so an item's first value says its start and shift (no random EQ to change it)."""
    from audiotrain.chords.lab import ChordSegment, write_lab
    from audiotrain.recipes.chords import data

    data_config, features = ChordDataConfig(eq_db=0.0), ChordFeatureConfig()
    config = data.song_config(data_config, features)
    write_lab(tmp_path / "a.lab", [ChordSegment(0.0, 30.0, "A:min")])
    song = SongEntry("a", tmp_path / "a.wav", tmp_path / "a.lab")
    frames = int(30 * features.frame_rate) + 3
    rows = np.arange(config.total_bins, dtype=np.float32)[:, None] + 1000 * np.arange(frames)[None, :]
    splits = SongSplits(train=[song], val=[], test=[], source="1 song")

    def windows(seed):
        train_set = data.make_loaders(splits, lambda path: rows, data_config, features, 4, seed)[2]
        return [float(train_set[i]["features"][0, 0]) for i in range(len(train_set))]

    assert len(windows(1)) > 1
    assert windows(1) == windows(1) and windows(1) != windows(2)


@pytest.mark.parametrize("ranks, keeps_short_batch", [(1, False), (2, True)])
def test_a_job_of_ranks_with_fewer_windows_than_its_whole_batch_keeps_its_short_batch(
    monkeypatch, ranks, keeps_short_batch
):
    """9 windows, --batch_size 8 per rank under `audiotrain launch -n 2`: each rank's share (5) is less than
    a batch; dropping it trained 0 steps and then failed on a missing best checkpoint."""
    from audiotrain.distributed import collectives
    from audiotrain.recipes.chords import data

    class NineWindows:
        def __init__(self, songs, *args, **kwargs):
            pass

        def __len__(self):
            return 9

        def __getitem__(self, index):
            return {"x": np.zeros(2, np.float32)}

    monkeypatch.setattr(data, "ChordSongDataset", NineWindows)
    monkeypatch.setattr(collectives, "world_size", lambda: ranks)
    splits = SongSplits(train=[], val=[], test=[], source="nine windows")
    train_loader, _, _ = data.make_loaders(
        splits, lambda path: None, ChordDataConfig(pitch_shift=False), ChordFeatureConfig(), 8, seed=0
    )
    assert train_loader.drop_last is not keeps_short_batch


@pytest.fixture(scope="module")
def one_step_run(tmp_path_factory):
    """A run of one epoch of one step (its stdout and stderr), shared by the tests of what it says (built once
    for both xdist workers)."""
    import contextlib

    def build(root: Path) -> tuple[str, str]:
        flags = [*TINY_FLAGS, "--num_epochs", "1", "--save_every", "0", "--data.demo_seconds", "4"]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = chords.main(
                [*flags, "--data.cache_dir", str(root / "cache"), "--run_dir", str(root / "r")]
            )
        assert code == 0, err.getvalue()
        return out.getvalue(), err.getvalue()

    return built_once(tmp_path_factory, "one_step", build)[1]


def test_a_run_of_one_epoch_and_one_step_says_so_in_the_singular(one_step_run):
    """quick_test's runs printed "(1 steps of 4)" and "trained 1 epochs (1 steps)"."""
    said = "".join(one_step_run)
    assert "(1 step of 4)" in said and "trained 1 epoch (1 step) in " in said, said


def test_a_short_training_gives_its_time_to_a_tenth_of_a_second(one_step_run):
    """ "trained 1 epoch (1 step) in 0 s": a run under a second said 0 s, so two settings compared by their
    summary (--data.num_workers, --processes) all read the same."""
    said = one_step_run[1]
    assert re.search(r"trained 1 epoch \(1 step\) in \d+\.\d s; history: ", said), said


def test_train_keeps_its_results_on_stdout_and_its_diagnostics_on_stderr(tiny_run, tmp_path, capsys):
    """`train --data d > results.txt` mixed the scan's skip list, the feature lines and the data report into
    the results, while `evaluate` kept them on stderr: one rule for every command."""
    root, _ = tiny_run
    data = tmp_path / "songs"
    generate_demo_songs(data, n_songs=4, seed=9, song_seconds=6)
    (data / "orphan.wav").write_bytes((data / "song_000.wav").read_bytes())  # no annotation: skipped
    run_dir = tmp_path / "run"
    flags = [
        "train",
        "--data",
        str(data),
        *TINY_FLAGS,
        "--num_epochs",
        "1",
        "--data.cache_dir",
        str(root / "cache"),
    ]
    capsys.readouterr()
    assert chords.main([*flags, "--run_dir", str(run_dir)]) == 0
    captured = capsys.readouterr()
    for diagnostic in (
        "1 audio file without an annotation",
        "orphan.wav",
        "train /",
        "model: ",
        "trained 1 epoch",
        "feature cache: this run's ",
    ):
        assert diagnostic in captured.err and diagnostic not in captured.out, (diagnostic, captured.out)
    assert re.search(r"features of (all )?\d+ songs", captured.err), captured.err
    for result in ("held-out songs (", "majmin_inv ", f"run folder: {run_dir}", "predict with: "):
        assert result in captured.out, (result, captured.out)


def test_a_resume_of_a_checkpoint_that_does_not_exist_prints_only_its_error(tmp_path, capsys):
    """A note about how many processes trained the (missing) checkpoint came before the error."""
    missing = str(tmp_path / "run" / "checkpoints" / "nothere")
    run = str(tmp_path / "run")
    argv = ["--preset", "quick_test", "--processes", "1", "--resume", missing, "--run_dir", run]  # fmt: skip
    assert chords.main(argv) == 2
    printed = capsys.readouterr()
    assert printed.out == "" and printed.err.startswith(f"error: checkpoint folder {missing} does not exist")
    assert "processes" not in printed.err, printed.err


@pytest.mark.parametrize("name", ["last", "interrupted"])
def test_a_resume_of_a_bare_checkpoint_name_names_the_run_folders(name, tmp_path, monkeypatch, capsys):
    """`--resume last --run_dir RUN` (Lightning's ckpt_path="last") said that `last` is kept only with
    ModelCheckpoint(save_last=True) and listed the checkpoints of the current folder, other runs'."""
    run = tmp_path / "run"
    (run / "checkpoints" / name).mkdir(parents=True)
    (tmp_path / "other" / "checkpoints" / "best").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    argv = ["--preset", "quick_test", "--processes", "1", "--resume", name, "--run_dir", str(run)]
    assert chords.main(argv) == 2
    said = capsys.readouterr().err
    assert f"--resume {run / 'checkpoints' / name}" in said, said
    assert "ModelCheckpoint" not in said and "other" not in said, said


def test_the_recipes_help_fits_an_80_column_terminal(monkeypatch, capsys):
    """`chords --help` was fixed at 110 columns: 16 of its 29 lines ran past an 80-column terminal."""
    monkeypatch.setenv("COLUMNS", "80")
    assert chords.main(["--help"]) == 0
    printed = capsys.readouterr().out
    assert max(len(line) for line in printed.splitlines()) <= 80, printed
    assert (
        "  predict         transcribe audio: --checkpoint CKPT" in printed
    )  # (the commands keep their column)


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "cv"])
def test_each_commands_help_fits_an_80_column_terminal(command, monkeypatch, capsys):
    """argparse indents the usage under the command (48 columns for `... chords train`), and its longer
    groups (``[--decode.method {viterbi,median,argmax}]``) ran to 93 columns."""
    monkeypatch.setenv("COLUMNS", "80")
    status = chords.main([command, "--help"])
    assert status == 0
    printed = capsys.readouterr().out
    assert max(len(line) for line in printed.splitlines()) <= 80, printed
    assert printed.startswith(f"usage: python -m audiotrain.recipes.chords {command}\n       [-h]"), printed[
        :300
    ]


def test_a_resume_of_an_early_stopped_and_scored_run_is_refused_and_leaves_its_evaluation(
    tiny_run, tmp_path, capsys
):
    # Early stopping left epochs under --num_epochs; a resume of the finished run trained one more and
    # replaced its evaluation/ (here edited by the user) without --overwrite.
    root, _ = tiny_run
    run_dir = tmp_path / "r"
    flags = [*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--run_dir", str(run_dir)]
    flags += ["--num_epochs", "6", "--patience", "1", "--min_delta", "100"]
    assert chords.main(flags) == 0
    edited = sorted((run_dir / "evaluation").glob("*.lab"))[0]
    edited.write_text("0.000000\t1.000000\tC:maj\n")
    kept = {path: path.read_bytes() for path in [run_dir / "history.json", *run_dir.glob("checkpoints/*/*")]}
    capsys.readouterr()
    assert chords.main([*flags, "--resume", str(run_dir / "checkpoints" / "last")]) == 2
    err = capsys.readouterr().err
    assert "early stopping ended its run" in err and "stop again at once" in err and "Traceback" not in err
    assert "resume it with --patience above 1 (or a --min_delta below 100)" in err, err
    assert edited.read_text() == "0.000000\t1.000000\tC:maj\n"
    assert all(path.read_bytes() == data for path, data in kept.items())


def test_an_early_stopped_run_resumed_with_early_stopping_that_would_stop_it_again_is_refused(
    tiny_run, tmp_path, capsys
):
    """Any change of --patience or --min_delta was let through: a smaller patience (or a larger min_delta)
    trained one epoch, stopped at once and replaced the run's evaluation/."""
    root, _ = tiny_run
    run_dir = tmp_path / "r"
    flags = [*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--run_dir", str(run_dir)]
    flags += ["--num_epochs", "6"]
    assert chords.main([*flags, "--patience", "2", "--min_delta", "100"]) == 0  # (stops after 3 epochs)
    kept = {path: path.read_bytes() for path in [*run_dir.glob("evaluation/*"), run_dir / "history.json"]}
    resume = ["--resume", str(run_dir / "checkpoints" / "last")]
    for early_stopping in (
        ["--patience", "1", "--min_delta", "100"],
        ["--patience", "2", "--min_delta", "200"],
    ):
        capsys.readouterr()
        assert chords.main([*flags, *early_stopping, *resume]) == 2
        err = capsys.readouterr().err
        assert "it would stop again at once (it waited 2 epochs since its best val_loss)" in err, err
        assert "resume it with --patience above 2 (or a --min_delta below 100)" in err, err
    assert all(path.read_bytes() == data for path, data in kept.items())


def test_an_early_stopped_run_resumed_with_a_larger_patience_trains_on_in_its_own_folder(tiny_run, tmp_path):
    """How such a run is trained further (as 710df16 allowed): the refusal above is for unchanged early
    stopping only, which would stop again at once."""
    root, _ = tiny_run
    run_dir = tmp_path / "r"
    flags = [*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--run_dir", str(run_dir)]
    flags += ["--num_epochs", "6", "--min_delta", "100"]
    assert chords.main([*flags, "--patience", "1"]) == 0
    epochs = json.loads((run_dir / "history.json").read_text())["epoch"][-1]
    resume = ["--resume", str(run_dir / "checkpoints" / "last")]
    assert chords.main([*flags, "--patience", "3", *resume]) == 0
    assert json.loads((run_dir / "history.json").read_text())["epoch"][-1] == epochs + 2


def test_a_full_disk_after_training_is_one_line_and_the_printed_resume_writes_what_is_missing(
    tiny_run, tmp_path, monkeypatch, capsys
):
    import errno

    from audiotrain.metrics import plots

    # The disk fills as training_curves.png is drawn: the checkpoints and history.json are written.
    real_write = plots.write_atomically

    def full_for_the_curves(path, write):
        def failing(handle):
            raise OSError(errno.ENOSPC, "No space left on device")

        real_write(path, failing if Path(path).name == "training_curves.png" else write)

    root, _ = tiny_run
    run_dir = tmp_path / "r"
    flags = [*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--run_dir", str(run_dir)]
    monkeypatch.setattr(plots, "write_atomically", full_for_the_curves)
    monkeypatch.delenv("AUDIOTRAIN_TRACEBACK", raising=False)
    capsys.readouterr()
    assert chords.main(flags) == 1  # stopped, not done: the same command goes on once there is room
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"cannot write {run_dir / 'training_curves.png'}: no space left on device" in err
    assert f"checkpoints are saved in {run_dir / 'checkpoints'}; written: history.json" in err
    assert f"--resume {run_dir / 'checkpoints' / 'last'}" in err
    assert not list(run_dir.glob(".tmp-*"))
    # With room again, the printed command draws the curves the first part could not, and says so.
    monkeypatch.setattr(plots, "write_atomically", real_write)
    assert chords.main([*flags, "--resume", str(run_dir / "checkpoints" / "last")]) == 0
    out = capsys.readouterr().out
    assert (run_dir / "training_curves.png").is_file() and "(+ training_curves.png)" in out
    assert (run_dir / "evaluation" / "confusion_matrix.png").is_file()


def test_a_full_disk_as_training_saves_names_the_command_that_goes_on_from_the_newest_checkpoint(
    tiny_run, tmp_path, monkeypatch, capsys
):
    """A disk that filled as `last` was saved (a run folder on a small laptop disk) was one line naming the
    file and the free space, but not how to go on: the command that continues the run was printed only
    after Ctrl-C or a full disk in the evaluation."""
    import errno
    import re

    saves_of_last = []
    real_save = ckpt._save_arrays

    def full_at_the_second_last(path, arrays):  # epoch 0's saves are written; epoch 1's `last` is not
        if path.parent.name.startswith(".last.tmp-") and path.name == "model.safetensors":
            saves_of_last.append(path)
            if len(saves_of_last) == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        real_save(path, arrays)

    root, _ = tiny_run
    run_dir = tmp_path / "r"
    flags = [*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--run_dir", str(run_dir)]
    monkeypatch.setattr(ckpt, "_save_arrays", full_at_the_second_last)
    monkeypatch.delenv("AUDIOTRAIN_TRACEBACK", raising=False)
    capsys.readouterr()
    assert chords.main(flags) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "no space left" in err, err
    assert "; once there is room, continue the run with:" in err, err
    (resume,) = re.findall(r"--resume (\S+)", err)
    newest = json.loads((Path(resume) / "trainer_state.json").read_text())["progress"]["global_step"]
    for folder in (run_dir / "checkpoints").iterdir():
        if not folder.name.startswith("."):
            steps = json.loads((folder / "trainer_state.json").read_text())["progress"]["global_step"]
            assert steps <= newest, (folder, resume)
    # With room again, the printed command trains the run to its end in its folder.
    monkeypatch.setattr(ckpt, "_save_arrays", real_save)
    assert chords.main([*flags, "--resume", resume]) == 0
    assert json.loads((run_dir / "history.json").read_text())["epoch"][-1] == 1  # (the second, from 0)
    assert (run_dir / "evaluation" / "scores.json").is_file()


def test_a_full_disk_as_the_final_epochs_last_saves_is_finished_by_the_printed_command(
    tiny_run, tmp_path, monkeypatch, capsys
):
    """A disk that filled as the final epoch's `last` was saved, after its `best` was written: the error
    printed 'once there is room, continue the run with: ... --resume RUN/checkpoints/best', and that command
    was refused ('it has trained 1 epoch, and --num_epochs 1 leaves none to train'), so the run never got its
    history.json, curves and held-out evaluation. The printed command now finishes the run from `best`."""
    import errno
    import re

    real_save = ckpt._save_arrays

    def full_at_last(path, arrays):  # `best` of the only epoch is written; `last` is not
        if path.parent.name.startswith(".last.tmp-"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(path, arrays)

    root, _ = tiny_run
    run_dir = tmp_path / "r"
    flags = [*TINY_FLAGS, "--num_epochs", "1", "--save_every", "0"]
    flags += ["--data.cache_dir", str(root / "cache"), "--run_dir", str(run_dir)]
    monkeypatch.setattr(ckpt, "_save_arrays", full_at_last)
    monkeypatch.delenv("AUDIOTRAIN_TRACEBACK", raising=False)
    capsys.readouterr()
    assert chords.main(flags) == 1
    err = capsys.readouterr().err
    assert "; once there is room, continue the run with:" in err, err
    (resume,) = re.findall(r"--resume (\S+)", err)
    assert Path(resume) == run_dir / "checkpoints" / "best", err
    monkeypatch.setattr(ckpt, "_save_arrays", real_save)
    assert chords.main([*flags, "--resume", resume]) == 0, capsys.readouterr().err
    assert json.loads((run_dir / "history.json").read_text())["epoch"] == [0]
    assert (run_dir / "evaluation" / "confusion_matrix.png").is_file()


def test_a_full_disk_at_a_runs_first_save_leaves_its_folder_for_the_same_command(
    tiny_run, tmp_path, monkeypatch, capsys
):
    """A disk that filled as a run saved its first checkpoint left the run folder with its config.json and
    no checkpoint, and the same command, once there was room, was refused: '--run_dir RUN already holds
    files (a previous run?) ... (it has no checkpoint to continue from)', though --help says the same command
    goes on. The folder is left as it was found, and the error says to run the same command again."""
    import errno

    real_save = ckpt._save_arrays

    def full(path, arrays):
        raise OSError(errno.ENOSPC, "No space left on device")

    root, _ = tiny_run
    run_dir = tmp_path / "r"
    flags = [*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--run_dir", str(run_dir)]
    monkeypatch.setattr(ckpt, "_save_arrays", full)
    monkeypatch.delenv("AUDIOTRAIN_TRACEBACK", raising=False)
    capsys.readouterr()
    assert chords.main(flags) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "no space left" in err, err
    assert "once there is room, run the same command again" in err, err
    monkeypatch.setattr(ckpt, "_save_arrays", real_save)
    assert chords.main(flags) == 0, capsys.readouterr().err
    assert (run_dir / "evaluation" / "confusion_matrix.png").is_file()


def test_a_run_folder_whose_checkpoints_are_linked_to_another_disk_beforehand_trains(
    tiny_run, tmp_path, capsys
):
    """A user who put a new run's checkpoints on another disk before its first run (mkdir RUN, ln -s
    /big/disk RUN/checkpoints) was refused: '--run_dir RUN already holds files (a previous run?) ... (it has
    no checkpoint to continue from)'. A run folder holding only its empty checkpoint folder is a new one."""
    root, _ = tiny_run
    run_dir, elsewhere = tmp_path / "r", tmp_path / "big_disk" / "checkpoints"
    elsewhere.mkdir(parents=True)
    run_dir.mkdir()
    (run_dir / "checkpoints").symlink_to(elsewhere)
    flags = [*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--run_dir", str(run_dir)]
    assert chords.main(flags) == 0, capsys.readouterr().err
    assert (elsewhere / "last" / "model.safetensors").is_file()
    assert (run_dir / "checkpoints").is_symlink() and (run_dir / "evaluation" / "scores.json").is_file()


def test_a_full_disk_as_the_confusion_matrix_is_drawn_names_it_not_a_temporary_file(
    tiny_run, tmp_path, monkeypatch, capsys
):
    """A disk that filled as a run's evaluation drew its confusion matrix said 'cannot write
    RUN/evaluation/.tmp-056af03cf5f64141928c7f6fec34e351.png: no space left on device': the plot's own
    atomic write went into the evaluation's temporary file, and its error named that. It names the plot."""
    import errno

    from audiotrain.metrics import plots

    real_figure = plots.confusion_matrix_figure

    def figure_on_a_full_disk(*args, **options):
        figure = real_figure(*args, **options)

        def savefig(*_args, **_options):
            raise OSError(errno.ENOSPC, "No space left on device")

        figure.savefig = savefig
        return figure

    root, _ = tiny_run
    run_dir = tmp_path / "r"
    flags = [*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--run_dir", str(run_dir)]
    monkeypatch.setattr(plots, "confusion_matrix_figure", figure_on_a_full_disk)
    monkeypatch.delenv("AUDIOTRAIN_TRACEBACK", raising=False)
    capsys.readouterr()
    assert chords.main(flags) == 1
    err = capsys.readouterr().err
    matrix = run_dir / "evaluation" / "confusion_matrix.png"
    assert f"error: cannot write {matrix}: no space left on device" in err, err
    assert not list((run_dir / "evaluation").glob(".tmp-*"))


@needs_file_size_limit
def test_a_run_folder_on_a_full_disk_is_one_line_naming_the_file_not_stdout(tiny_run, tmp_path, capsys):
    """A --run_dir on a disk with no room left: the note in the folder's lock file (which process holds it)
    was the first write, and its bare "[Errno 28]" named no file, so the command said "cannot write to
    stdout: no space left on device" (exit status 1) of a log that was fine."""
    root, _ = tiny_run
    run_dir = tmp_path / "r"
    flags = [*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--run_dir", str(run_dir)]
    assert chords.main(flags[:-2] + ["--run_dir", str(tmp_path / "warm")]) == 0  # (kernels compiled)
    capsys.readouterr()
    with files_cannot_grow_past(0):  # (EFBIG, "File too large": the error a full disk's ENOSPC is)
        status = chords.main(flags)
    err = capsys.readouterr().err
    assert status == 1 and "stdout" not in err, err
    assert f"cannot write {run_dir / ckpt.CLAIM_FILE}: File too large" in err, err
    assert chords.main(flags) == 0  # the same command, once there is room


def test_a_read_only_disk_as_training_saves_is_not_said_to_want_room(tiny_run, tmp_path, monkeypatch, capsys):
    """A file system that turned read-only as `last` was saved (an I/O error's remount, EROFS) was told
    'once there is room, continue the run with:' after 'Read-only file system': room was not its lack."""
    import errno

    saves_of_last = []
    real_save = ckpt._save_arrays

    def read_only_at_the_second_last(path, arrays):  # epoch 0's saves are written; epoch 1's `last` is not
        if path.parent.name.startswith(".last.tmp-") and path.name == "model.safetensors":
            saves_of_last.append(path)
            if len(saves_of_last) == 2:
                raise OSError(errno.EROFS, "Read-only file system")
        real_save(path, arrays)

    root, _ = tiny_run
    flags = [*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--run_dir", str(tmp_path / "r")]
    monkeypatch.setattr(ckpt, "_save_arrays", read_only_at_the_second_last)
    monkeypatch.delenv("AUDIOTRAIN_TRACEBACK", raising=False)
    capsys.readouterr()
    assert chords.main(flags) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Read-only file system" in err, err
    assert "once there is room" not in err, err
    assert "; once the file system can be written again, continue the run with:\n" in err, err
    assert "--resume " in err, err


def test_predict_on_a_full_disk_says_what_it_wrote_and_the_command_that_goes_on(
    tiny_run, tmp_path, monkeypatch, capsys
):
    import errno

    import audiotrain._files as files

    root, run_dir = tiny_run
    generate_demo_songs(tmp_path / "songs", n_songs=3, seed=7, song_seconds=6)
    out_dir = tmp_path / "labs"
    real_write = files.write_output
    written = []

    def full(tmp):
        raise OSError(errno.ENOSPC, "No space left on device")

    def full_after_one(path, write_to, replace):  # the disk fills after the first output
        real_write(path, full if written else write_to, replace)
        written.append(path)

    monkeypatch.setattr(files, "write_output", full_after_one)  # (.lab files: write_given_path)
    monkeypatch.delenv("AUDIOTRAIN_TRACEBACK", raising=False)
    capsys.readouterr()
    argv = ["predict", "--checkpoint", str(run_dir), str(tmp_path / "songs"), "-o", str(out_dir)]
    assert chords.main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("error: cannot write")]
    assert "no space left on device; wrote 1 of 3 .lab files" in line and "not transcribed:" in line
    assert "--skip_existing" in err.splitlines()[-1]
    assert [p.name for p in out_dir.iterdir()] == [written[0].name]


def test_a_run_folder_deleted_while_training_is_warned_of_at_the_next_epoch_end(
    tiny_run, tmp_path, monkeypatch, capsys
):
    root, _ = tiny_run
    run_dir = tmp_path / "r"
    real_write = ckpt.write_checkpoint

    def then_the_record_goes(path, *args, **kwargs):  # (`rm -rf` of the folder, as far as the record goes)
        written = real_write(path, *args, **kwargs)
        (run_dir / "config.json").unlink(missing_ok=True)
        return written

    monkeypatch.setattr(ckpt, "write_checkpoint", then_the_record_goes)
    capsys.readouterr()
    flags = [*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--run_dir", str(run_dir)]
    chords.main([*flags, "--num_epochs", "3"])
    err = capsys.readouterr().err
    warned = [line for line in err.splitlines() if "config.json is gone" in line]
    assert len(warned) == 1 and "deleted or moved while training" in warned[0] and "Ctrl-C" in warned[0]


def test_a_run_folder_deleted_while_training_ends_saying_so_and_what_was_saved_where(
    tiny_run, tmp_path, monkeypatch, capsys
):
    """`rm -rf RUN` mid-run took checkpoints/best: the run ended with "checkpoint folder RUN/checkpoints/best
    does not exist", and its trained.json named that missing best."""
    root, _ = tiny_run
    run_dir = tmp_path / "r"
    real_write = ckpt.write_checkpoint
    lasts = []

    def the_folder_goes_before_the_final_save(path, *args, **kwargs):
        lasts.extend([path] if Path(path).name == "last" else [])
        if len(lasts) == 2 and run_dir.exists():  # (the final epoch's saves come after its best)
            shutil.rmtree(run_dir)
        return real_write(path, *args, **kwargs)

    monkeypatch.setattr(ckpt, "write_checkpoint", the_folder_goes_before_the_final_save)
    monkeypatch.delenv("AUDIOTRAIN_TRACEBACK", raising=False)
    capsys.readouterr()
    flags = [*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--run_dir", str(run_dir)]
    assert chords.main([*flags, "--num_epochs", "2", "--patience", "1000"]) == 2
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert f"the run folder {run_dir} was deleted or moved while training" in line, line
    assert f"what the run saved after that is in {run_dir / 'checkpoints'}: epoch=001" in line, line
    assert "does not exist" not in err and not (run_dir / "trained.json").exists()


def test_config_json_records_a_default_cache_as_null_so_a_replay_follows_its_own_cache_variable(
    tiny_run, tmp_path, monkeypatch
):
    """README: config.json records the cache folder only where it was given. It recorded the author's
    absolute $AUDIOTRAIN_CACHE_DIR (or default cache), so a colleague's replay wrote into the author's home
    and the variable the error advised was ignored."""
    root, _ = tiny_run
    monkeypatch.setenv("AUDIOTRAIN_CACHE_DIR", str(root / "cache"))
    run = tmp_path / "run"
    assert chords.main([*TINY_FLAGS, "--num_epochs", "1", "--run_dir", str(run)]) == 0
    assert json.loads((run / "config.json").read_text())["config"]["data"]["cache_dir"] is None
    # The colleague's shell: their own cache variable, which the replay follows.
    monkeypatch.setenv("AUDIOTRAIN_CACHE_DIR", str(tmp_path / "their_cache"))
    again = tmp_path / "again"
    assert chords.main(["--config", str(run / "config.json"), "--run_dir", str(again)]) == 0
    assert (tmp_path / "their_cache" / "demo").is_dir()


def test_an_unwritable_cache_folder_given_by_a_config_file_is_not_advised_the_variable_it_overrides(
    tmp_path, make_read_only, monkeypatch, capsys
):
    """A cache_dir from --config is used over AUDIOTRAIN_CACHE_DIR: advising the variable sent the user round."""
    (tmp_path / "ro").mkdir()
    make_read_only(tmp_path / "ro")
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"data": {"cache_dir": str(tmp_path / "ro" / "cache")}}))
    monkeypatch.setenv("AUDIOTRAIN_CACHE_DIR", str(tmp_path / "writable"))
    assert chords.main(["demo", *TINY_FLAGS, "--config", str(settings)]) == 2
    err = capsys.readouterr().err
    assert "cannot write the demo songs" in err and "--data.cache_dir" in err, err
    assert "or AUDIOTRAIN_CACHE_DIR" not in err and "does not override" in err, err


def test_a_moved_annotations_folder_named_by_config_is_an_error_naming_the_file_and_the_field(
    tmp_path, capsys
):
    songs = tmp_path / "songs"
    generate_demo_songs(songs, n_songs=2, seed=1, song_seconds=6)
    record = tmp_path / "run" / "config.json"
    record.parent.mkdir()
    gone = str(tmp_path / "labs_moved_away")
    from audiotrain.recipes.chords.config import TrainingConfig

    settings = TrainingConfig().to_dict()
    settings["data"] |= {"data_dir": str(songs), "annotations": gone}
    record.write_text(json.dumps({"config": settings, "versions": {}, "command": []}))
    status = chords.main(["train", "--config", str(record), "--run_dir", str(tmp_path / "again")])
    assert status == 2
    expected = f"data.annotations {gone} (in {record}): no such folder; pass --data.annotations FOLDER"
    assert expected in capsys.readouterr().err


@pytest.mark.slow
def test_overwrite_replaces_a_runs_checkpoints_in_an_absolute_checkpoint_dir_but_not_another_runs(
    tiny_run, tmp_path, capsys
):
    """The same command again with --overwrite was refused for the run's own absolute --checkpoint_dir
    ("another run's checkpoints?"); it replaces the run and its checkpoints there. Another run folder's
    --overwrite stays refused, saying why --overwrite does not reach them."""
    root, _ = tiny_run
    run, checkpoints = tmp_path / "run", tmp_path / "elsewhere"
    flags = [*TINY_FLAGS, "--num_epochs", "1", "--data.cache_dir", str(root / "cache")]
    again = [*flags, "--run_dir", str(run), "--checkpoint_dir", str(checkpoints), "--overwrite"]
    assert chords.main([*flags, "--run_dir", str(run), "--checkpoint_dir", str(checkpoints)]) == 0
    shutil.copytree(checkpoints / "last", checkpoints / "epoch=007")  # one the new run would not write
    before = (checkpoints / "last" / "trainer_state.json").read_bytes()
    capsys.readouterr()
    other = [
        *flags,
        "--run_dir",
        str(tmp_path / "other"),
        "--checkpoint_dir",
        str(checkpoints),
        "--overwrite",
    ]
    assert chords.main(other) == 2
    _one_error_line(capsys, "--overwrite does not lift this", f"delete {checkpoints} yourself")
    assert (checkpoints / "last" / "trainer_state.json").read_bytes() == before
    assert not (tmp_path / "other").exists()
    assert chords.main(again) == 0
    said = capsys.readouterr().err
    assert (
        f"--overwrite: removed the previous run's checkpoints best, epoch=000, epoch=007, last from {checkpoints}"
        in said
    )
    assert sorted(p.name for p in checkpoints.iterdir() if not p.name.startswith(".")) == [
        "best", "epoch=000", "last"
    ]  # fmt: skip


def test_a_run_folder_whose_checkpoints_are_elsewhere_is_refused_naming_where_they_are(
    tiny_run, tmp_path, capsys
):
    """An absolute --checkpoint_dir leaves none under the run folder: the error only called it an incomplete
    checkpoint, without the folder its config.json records."""
    root, _ = tiny_run
    run, checkpoints = tmp_path / "run", tmp_path / "elsewhere"
    flags = [*TINY_FLAGS, "--num_epochs", "1", "--data.cache_dir", str(root / "cache")]
    assert chords.main([*flags, "--run_dir", str(run), "--checkpoint_dir", str(checkpoints)]) == 0
    capsys.readouterr()
    assert chords.main(["export", "--checkpoint", str(run), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert f"config.json records its checkpoints in {checkpoints}" in err, err
    assert str(checkpoints / "best") in err and "Traceback" not in err


# ---- what a refusal names: the user's own flag, file or folder -----------------------------------------


def test_a_file_given_as_the_data_folder_is_called_a_file(tmp_path, monkeypatch, capsys):
    """It said "no such folder" of a file that exists."""
    monkeypatch.setattr(chords, "run_training", lambda *a, **k: pytest.fail("ran without a data folder"))
    afile = tmp_path / "afile.txt"
    afile.write_text("song.wav\n")
    for command in (["train"], ["cv", "--folds", "2"]):
        status = chords.main([*command, "--data", str(afile), "--run_dir", str(tmp_path / "run")])
        assert status == 2
        _one_error_line(
            capsys,
            f"--data {afile}: a file, not a folder",
            "expected a folder of audio files with .lab/.jams",
        )
    assert not (tmp_path / "run").exists()


def test_a_data_folder_typed_composed_is_the_folder_a_mac_stored_decomposed(tmp_path, monkeypatch, capsys):
    """A folder copied from a Mac is named decomposed (NFD); `--data Dönerdata` typed on Linux is composed
    (NFC). It said "--data Dönerdata: no such folder" beside the folder `ls` shows; on macOS, whose file
    systems ignore the form, the same command trains on it (recorded as stored, so a resume finds it)."""
    stored = tmp_path / unicodedata.normalize("NFD", "Dönerdata")
    stored.mkdir()
    trained_on = []

    def run_training(config, *args, **kwargs):
        trained_on.append(config.data.data_dir)
        raise SystemExit(0)

    monkeypatch.setattr(chords, "run_training", run_training)
    typed = tmp_path / unicodedata.normalize("NFC", "Dönerdata")
    argv = ["train", "--data", str(typed), "--run_dir", str(tmp_path / "run"), "--processes", "1"]
    assert chords.main(argv) == 0, capsys.readouterr().err
    assert trained_on == [str(stored)]


@pytest.mark.parametrize(
    "argv, said, not_said",
    [
        # It named only --features.bass_view_bins, a flag the user never gave.
        (
            ["--features.n_bins", "3"],
            "(you set --features.n_bins 3; features.bass_view_bins is 108, the default)",
            None,
        ),
        (
            ["--features.bass_view_bins", "300"],
            "(you set --features.bass_view_bins 300; features.n_bins is 216, the default)",
            None,
        ),
        (["--features.n_bins", "20", "--features.bass_view_bins", "30"], "= 30 is above", "you set"),
        (
            ["--features.hop_length", "50000"],
            "(you set --features.hop_length 50000; features.sr is 22050, the default)",
            None,
        ),
    ],
)
def test_a_check_of_two_settings_says_which_one_the_user_gave(
    argv, said, not_said, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(chords, "run_training", lambda *a, **k: pytest.fail("ran with bad settings"))
    status = chords.main([*argv, "--run_dir", str(tmp_path / "run")])
    assert status == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err and (not_said is None or not_said not in err), err


def test_a_check_of_two_settings_names_the_config_file_that_set_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(chords, "run_training", lambda *a, **k: pytest.fail("ran with bad settings"))
    config = tmp_path / "bins.yaml"
    config.write_text("features:\n  n_bins: 4\n")
    status = chords.main(["--config", str(config), "--run_dir", str(tmp_path / "run")])
    assert status == 2
    _one_error_line(
        capsys,
        "features.bass_view_bins (--features.bass_view_bins) = 108 is above "
        "features.n_bins (--features.n_bins) = 4",
        f"(you set features.n_bins: 4 in {config}; features.bass_view_bins is 108, the default)",
    )


def test_a_runs_history_given_as_config_is_not_read_as_misspelt_settings(
    tiny_run, tmp_path, monkeypatch, capsys
):
    """It said "unknown field 'epoch'; did you mean 'num_epochs'?" of a run's history.json."""
    _, run_dir = tiny_run
    monkeypatch.setattr(chords, "run_training", lambda *a, **k: pytest.fail("ran with a history as config"))
    status = chords.main(["--config", str(run_dir / "history.json"), "--run_dir", str(tmp_path / "run")])
    assert status == 2
    _one_error_line(capsys, f"{run_dir / 'history.json'} does not look like a config file", "its config.json")
    # A settings file with a misspelt key keeps its "did you mean".
    typo = tmp_path / "typo.yaml"
    typo.write_text("num_epoch: 3\n")
    status = chords.main(["--config", str(typo), "--run_dir", str(tmp_path / "run")])
    assert status == 2
    _one_error_line(capsys, "unknown field 'num_epoch'; did you mean 'num_epochs'?")


def test_cv_in_a_train_run_folder_offers_no_resume_it_would_refuse(tiny_run, capsys):
    """The refusal advised --resume RUN, which then said "not a cv run folder"."""
    root, run_dir = tiny_run
    argv = ["cv", "--folds", "2", *TINY_FLAGS, "--data.cache_dir", str(root / "cache")]
    before = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*"))
    capsys.readouterr()
    assert chords.main([*argv, "--run_dir", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert (
        f"--run_dir {run_dir} holds a train run (config.json, checkpoints/, history.json), not a cv run"
        in err
    )
    assert "choose a new --run_dir" in err and "--resume" not in err.replace("so --resume cannot", ""), err
    assert chords.main([*argv, "--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "not a cv run folder" in err and "it holds a train run" in err and "--overwrite" not in err, err
    assert sorted(p.relative_to(run_dir) for p in run_dir.rglob("*")) == before  # (nothing written there)


def test_a_resume_that_cannot_continue_gives_the_command_line_remedy(tiny_run, tmp_path, monkeypatch, capsys):
    root, run_dir = tiny_run
    base = [*TINY_FLAGS, "--data.cache_dir", str(root / "cache"), "--num_epochs", "3"]
    # Without the step's state: it advised the Python call load_weights(model.safetensors).
    partial = tmp_path / "partial"
    shutil.copytree(run_dir / "checkpoints" / "last", partial)
    (partial / ckpt.STEP_STATE_FILE).unlink()
    capsys.readouterr()
    assert chords.main([*base, "--run_dir", str(tmp_path / "partial_run"), "--resume", str(partial)]) == 2
    err = capsys.readouterr().err
    assert f"--resume {partial}: {partial} is missing {ckpt.STEP_STATE_FILE}" in err, err
    assert f"--init_from {partial}" in err and "load_weights" not in err, err
    # An export: the refusal alone, with no note on the processes it was trained in before it.
    monkeypatch.setattr(chords_train, "demo_splits", lambda *a, **k: pytest.fail("read the data first"))
    export = tmp_path / "export"
    assert chords.main(["export", "--checkpoint", str(run_dir), "--out", str(export)]) == 0
    capsys.readouterr()
    assert chords.main([*base, "--run_dir", str(tmp_path / "run"), "--resume", str(export)]) == 2
    err = capsys.readouterr().err
    assert "weights only" in err and f"--init_from {export}" in err and "note:" not in err, err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", [[], ["train"], ["cv"]])
def test_the_clap_recipes_name_for_the_run_folder_gets_a_did_you_mean(command, tmp_path, capsys):
    """--out (the CLAP recipe's name for --run_dir) was refused without a hint."""
    status = chords.main([*command, "--out", str(tmp_path / "x")])
    assert status == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --out" in err and "did you mean --run_dir?" in err, err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "flags",
    [
        ["--precision", "bf16-mixed"],
        ["--train.precision=bf16-true"],
        ["--precision", "bf16-mixed", "--num_epoch", "2"],
    ],
)
def test_a_precision_flag_says_the_chord_recipe_trains_in_float32(flags, tmp_path, capsys):
    """``chords train --precision bf16-mixed`` (the Trainer's setting; CLAP's --train.precision) got only
    argparse's "unrecognized arguments", with no word that the chord recipe trains in float32."""
    assert chords.main(["train", "--data", str(tmp_path), *flags]) == 2
    err = capsys.readouterr().err
    flag = flags[0].partition("=")[0]
    assert f"; {flag}: the chord recipe has no precision setting: it trains in float32" in err, err
    assert "audiotrain.Trainer(precision='bf16-mixed'" in err and "song_loaders" in err, err
    if "--lr" in flags:  # (another unknown flag keeps its own "did you mean")
        assert "did you mean" in err, err


def _draws() -> tuple:
    """One number from each global generator a run seeds: numpy's, Python's and MLX's."""
    import random

    return float(np.random.rand()), random.random(), mx.random.uniform().item()


def _seed_the_host(seed: int) -> None:
    import random

    np.random.seed(seed), random.seed(seed), mx.random.seed(seed)


def _tiny_config(cache: Path) -> TrainingConfig:
    parser = chords._training_parser("chords", "", needs_data=False)
    return chords._config_from_args(parser.parse_args([*TINY_FLAGS, "--data.cache_dir", str(cache)]))


def test_a_run_from_python_leaves_the_callers_generators_and_seed_as_it_found_them(tmp_path, monkeypatch):
    """A random search around `run_training` drew the same trial again after the first: the run left the
    caller's generators at its own seed (`seed_everything`), PL_GLOBAL_SEED set, and its seed the one of a
    later Trainer given none. The run itself is seeded as before (test_the_same_seed_gives_the_same_run)."""
    from audiotrain.train import seeding

    monkeypatch.delenv(seeding.SEED_ENV_VAR, raising=False)
    monkeypatch.setattr(seeding, "_last_seed", None)
    _seed_the_host(5)
    expected = _draws()
    _seed_the_host(5)
    silent = lambda *args, **kwargs: None  # noqa: E731
    chords_train.run_training(_tiny_config(tmp_path / "cache"), tmp_path / "run", log=silent, results=silent)
    assert _draws() == expected
    assert seeding.SEED_ENV_VAR not in os.environ and seeding.default_seed() == seeding.DEFAULT_SEED


def test_two_runs_from_python_in_a_sweeps_threads_leave_the_processs_warning_filters(tmp_path, monkeypatch):
    """Optuna's ``n_jobs=2`` runs two trials in threads. Each run hid the Trainer's short-epoch warning with
    `warnings.catch_warnings`, which puts back the whole filter list it found: the first run to start, ending
    first, put back its list, and the second then put back the one it had found, the first's "ignore" filter
    in it, so every later fit of the process lost that warning. The runs are held in that order here."""
    import contextlib
    import threading
    import warnings

    from audiotrain.train.trainer import SHORT_EPOCH_WARNING

    both_fitting, first_returned = threading.Barrier(2, timeout=300), threading.Event()
    advice = chords_train.smaller_model_advice

    @contextlib.contextmanager
    def in_that_order(*args):  # (entered around each run's fit, inside its warning filters)
        both_fitting.wait()
        with advice(*args):
            yield
        if threading.current_thread().name == "second":
            first_returned.wait(300)

    monkeypatch.setattr(chords_train, "smaller_model_advice", in_that_order)
    monkeypatch.chdir(tmp_path)  # (a relative path of the runs is the test's own, whatever folder it ran in)
    silent = lambda *args, **kwargs: None  # noqa: E731
    errors = []

    def trial(name):
        try:
            config = _tiny_config(tmp_path / "cache")
            chords_train.run_training(config, tmp_path / name, log=silent, results=silent)
        except BaseException as error:  # (said by the assertion below)
            errors.append(error)
        finally:
            if name == "first":
                first_returned.set()

    trials = [threading.Thread(target=trial, args=(name,), name=name) for name in ("first", "second")]
    for thread in trials:
        thread.start()
    for thread in trials:
        thread.join(600)
    # (each error with its traceback: a CI run once failed here with a FileNotFoundError in both threads,
    # its repr naming no file)
    assert not errors, "\n".join("".join(traceback.format_exception(error)) for error in errors)
    hiding = [f for f in warnings.filters if f[1] is not None and f[1].pattern == SHORT_EPOCH_WARNING]
    assert hiding == []


@pytest.fixture(scope="module")
def python_run(tmp_path_factory):
    """One tiny run from Python (`run_training`), its lines and scores written into files, shared by the tests
    that read what it returned and wrote: its root folder, its result, its log and results text."""
    root = tmp_path_factory.mktemp("python_run")
    log, results = io.StringIO(), io.StringIO()
    result = chords_train.run_training(_tiny_config(root / "cache"), root / "run", log=log, results=results)
    return root, result, log.getvalue(), results.getvalue()


def test_the_cache_is_free_once_a_run_from_python_returns(python_run):
    """After `run_training` returned, the process still held the cache's lock (the demo songs' hold was
    never released): ``cache clear`` from another process refused until the notebook or search ended."""
    cache = python_run[0] / "cache"
    clear = [sys.executable, "-m", "audiotrain", "cache", "clear", "--root", str(cache)]
    done = subprocess.run(clear, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_run_from_python_shows_as_one_line_in_a_notebook(python_run):
    """`run_training(...)`, a notebook cell's last value, showed an 8 kB repr over 36 lines: every confusion
    matrix as a numpy array, every song's segments. It shows as one line, as the Trainer and the
    ChordPredictor do (README)."""
    root, result, _, _ = python_run
    shown = repr(result)
    assert "\n" not in shown and len(shown) < 400, shown
    assert shown.startswith(f"RunResult(run_dir={str(root / 'run')!r}, checkpoint=")
    assert "evaluation=EvaluationResult" in shown and "trained=True" in shown


@pytest.fixture(scope="module")
def diverged_run(tmp_path_factory):
    """One tiny run at a learning rate its weights overflow at (its evaluation raises), shared by the tests
    that read what it left (a copy of its folder to change it): its config, its folder, what it raised. Built
    once for both xdist workers (its cache then only read: the tests' runs are on the same demo songs)."""

    def build(root: Path) -> tuple[TrainingConfig, str]:
        silent = lambda *args, **kwargs: None  # noqa: E731
        diverging = dataclasses.replace(_tiny_config(root / "cache"), learning_rate=1e30)
        with pytest.raises(ValueError) as raised:
            chords_train.run_training(diverging, root / "diverged", log=silent, results=silent)
        return diverging, str(raised.value)

    root, (diverging, message) = built_once(tmp_path_factory, "diverged", build)
    return diverging, root / "diverged", message


def test_a_diverged_trial_of_a_sweep_says_its_model_diverged_and_the_next_trial_runs(diverged_run, tmp_path):
    """A sweep's trial at too high a learning rate trained to weights that overflow, and its evaluation ended
    the run with "type_probs holds 2784 non-finite values (NaN or inf)": nothing said which model, which song,
    or that the training had diverged. The error names the checkpoint and the song, and what to change."""
    silent = lambda *args, **kwargs: None  # noqa: E731
    diverging, diverged, message = diverged_run
    assert str(diverged / "checkpoints") in message and ".wav" in message
    assert "diverged" in message and "learning_rate" in message
    result = chords_train.run_training(
        _tiny_config(Path(diverging.data.cache_dir)), tmp_path / "next", log=silent, results=silent
    )
    assert result.evaluation is not None


def test_a_diverged_run_records_its_validation_loss_as_nan_not_as_a_perfect_zero(diverged_run):
    """A trial whose model diverged (every head's validation loss NaN) recorded val_loss 0.0 in history.json,
    the callbacks and `runs`: the sum of the heads' means left each NaN head out, so a sweep minimising
    val_loss picked the diverged trial as its best, and ModelCheckpoint(monitor="val_loss") its epochs."""
    _, diverged, _ = diverged_run
    history = json.loads((diverged / "history.json").read_text())
    assert history["val_chord_type_loss"][0] is None
    assert history["val_loss"] == [None] * len(history["epoch"])  # NaN, written as null


def test_a_run_from_python_writes_its_lines_into_the_files_given_as_log_and_results(python_run, tmp_path):
    """run_training's docstring says `log` takes the progress lines (default: stderr) and `results` the scores
    (default: stdout); given a file as those defaults are (log=sys.stdout, an open file, a StringIO), the run
    ended in "TypeError: '_io.StringIO' object is not callable" from deep in its feature pass."""
    _, _, log, results = python_run
    assert "demo songs in" in log and "majmin" not in log
    assert "majmin" in results
    with pytest.raises(TypeError, match=r"run_training\(log=3\): expected a function taking a line"):
        chords_train.run_training(_tiny_config(tmp_path / "cache"), tmp_path / "other", log=3)
    assert not (tmp_path / "other").exists()


def test_main_returns_the_exit_status_of_every_command_line_error(capsys):
    """``main(["train"])`` (no --data) raised argparse's SystemExit, where ``main(["demo", "--data", "x"])``
    returned 2: a program calling it ended with the first. Both return it now, and --help returns 0."""
    from audiotrain.recipes.clap import main as clap_main

    assert chords.main(["train"]) == 2
    assert "no data folder" in capsys.readouterr().err
    assert chords.main(["demo", "--data", "x"]) == 2
    assert chords.main(["train", "--help"]) == 0
    assert clap_main(["--nope"]) == 2 and clap_main(["cv", "--nope"]) == 2
    assert "unrecognized arguments: --nope" in capsys.readouterr().err


def test_the_short_help_flag_prints_the_commands_overview_as_help_does(capsys):
    assert chords.main(["--help"]) == 0
    overview = capsys.readouterr().out
    assert chords.main(["-h"]) == 0
    assert capsys.readouterr().out == overview  # (not the demo command's list of settings)


def test_the_overview_names_every_command(capsys):
    assert chords.main(["--help"]) == 0
    commands = capsys.readouterr().out.split("commands:\n")[1].split("\n\n")[0]
    named = {line.split()[0] for line in commands.splitlines() if not line.startswith(" " * 18)}
    assert named | {"demo"} == {"(none)", *chords.COMMANDS}, commands


@pytest.mark.parametrize(
    "argv, said",
    [
        (["trian"], "unknown command 'trian' (did you mean 'train'?)"),
        (["--data=songs"], "--data DIR belongs to the train command"),  # (as --data songs)
    ],
)
def test_a_command_line_without_its_command_is_a_usage_error(argv, said, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert chords.main(argv) == 2
    assert said in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.fixture
def cv_folds_asked(monkeypatch):
    """The fold counts that the cv command asked of run_cross_validation, which trains nothing here."""
    from types import SimpleNamespace

    from audiotrain.recipes.chords import cv

    asked = []

    def recorded_cv(config, run_dir, folds, **options):
        asked.append(folds)
        return SimpleNamespace(run_dir=run_dir)

    monkeypatch.setattr(cv, "run_cross_validation", recorded_cv)
    return asked


def test_cv_refuses_more_processes_and_a_run_dir_other_than_the_one_it_resumes(
    cv_folds_asked, tmp_path, capsys
):
    started = tmp_path / "cv"
    started.mkdir()
    other = tmp_path / "other"
    assert chords.main(["cv", "--processes", "2", "--run_dir", str(other)]) == 2
    assert "--processes 2: cv trains its folds in this process" in capsys.readouterr().err
    assert chords.main(["cv", "--resume", str(started), "--run_dir", str(other)]) == 2
    assert f"--resume {started} names the cv run folder to continue; --run_dir {other} differs" in (
        capsys.readouterr().err
    )
    assert cv_folds_asked == [] and not other.exists() and not any(started.iterdir())


def test_cv_runs_five_folds_unless_told_otherwise(cv_folds_asked, tmp_path):
    assert chords.main(["cv", "--run_dir", str(tmp_path / "cv")]) == 0
    assert chords.main(["cv", "--folds", "3", "--run_dir", str(tmp_path / "cv3")]) == 0
    assert cv_folds_asked == [5, 3]


def test_a_resume_over_an_unreadable_run_record_refuses_rather_than_replace_it(tiny_run, tmp_path, capsys):
    """A run folder whose config.json was cut short (or re-encoded) was resumed without a word, and a new
    config.json written over it: its builds were gone, the resuming build listed alone."""
    root, run_dir = tiny_run
    copied = tmp_path / "run"
    shutil.copytree(run_dir, copied)
    record = copied / "config.json"
    cut = record.read_bytes()[: len(record.read_bytes()) // 2]
    record.write_bytes(cut)
    before = {p: p.stat().st_mtime_ns for p in copied.rglob("*") if p.is_file()}  # (files: none written)
    argv = [
        *TINY_FLAGS,
        "--data.cache_dir",
        str(root / "cache"),
        "--run_dir",
        str(copied),
        "--num_epochs",
        "3",
    ]
    capsys.readouterr()
    assert chords.main([*argv, "--resume", str(copied / "checkpoints" / "last")]) == 2
    err = capsys.readouterr().err
    assert f"{record}: the run's record cannot be read" in err and "Traceback" not in err, err
    assert {p: p.stat().st_mtime_ns for p in copied.rglob("*") if p.is_file()} == before
    assert record.read_bytes() == cut


def test_a_mel_run_trains_and_its_checkpoint_predicts_on_mel_features(tmp_path, capsys):
    """``--features.kind mel`` alone trains (its pitch shift, bass view and tuning correction default off),
    fills its own cache folder, records mel in the checkpoint, and predict reads the checkpoint's kind."""
    run_dir = tmp_path / "run"
    argv = ["demo", "--preset", "quick_test", "--processes", "1", "--features.kind", "mel",
            "--features.n_bins", "64", "--data.cache_dir", str(tmp_path / "cache"),
            "--run_dir", str(run_dir)]  # fmt: skip
    assert chords.main(argv) == 0
    assert "data.pitch_shift: off, as features.kind mel" in capsys.readouterr().err
    stored = ckpt.read_state(run_dir / "checkpoints" / "best")["module_state"][CHECKPOINT_KEY]["features"]
    assert stored["kind"] == "mel" and stored["n_bins"] == 64 and stored["max_pitch_shift"] == 0
    assert [p.name[:9] for p in (tmp_path / "cache" / "features").glob("chord*")] == ["chordmel-"]
    songs = generate_demo_songs(tmp_path / "songs", n_songs=1, seed=7, song_seconds=6)
    assert chords.main(["predict", "--checkpoint", str(run_dir), str(songs[0].audio_path)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed and all(len(line.split("\t")) == 3 for line in printed)
    predictor = ChordPredictor.from_checkpoint(run_dir)
    assert predictor.features.kind == "mel" and predictor.tta_shifts == (0,)
    assert chords.main(["predict", "--checkpoint", str(run_dir), "--tta", "1", str(songs[0].audio_path)]) != 0
    assert "--tta 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--features.kind", "mel", "--features.max_pitch_shift", "3"], "features.max_pitch_shift"),
        (["--features.kind", "mel", "--features.bass_view_bins", "8"], "features.bass_view_bins"),
        (["--features.kind", "mel", "--features.tuning_correction", "true"], "features.tuning_correction"),
    ],
)
def test_mel_features_refuse_the_cqt_grid_settings_by_flag(tmp_path, capsys, flags, named):
    argv = ["demo", "--preset", "quick_test", "--processes", "1", *flags, "--run_dir", str(tmp_path / "run")]
    assert chords.main(argv) != 0
    err = capsys.readouterr().err
    assert f"{named} (--{named}) must be" in err and "with features.kind mel" in err
    assert not (tmp_path / "run").exists()


def test_mel_features_built_in_python_name_every_cqt_grid_setting_at_once():
    """ChordFeatureConfig(kind="mel") from Python keeps the CQT's grid defaults (only a flag or a config
    file's kind sets them): its refusal named max_pitch_shift alone, then bass_view_bins once that was set,
    then tuning_correction, three tries to learn one rule."""
    with pytest.raises(ValueError) as refused:
        ChordFeatureConfig(kind="mel")
    for named in ("features.max_pitch_shift", "features.bass_view_bins", "features.tuning_correction"):
        assert f"{named} (--{named}) must be" in str(refused.value), named
    assert ChordFeatureConfig(kind="mel", max_pitch_shift=0, bass_view_bins=0, tuning_correction=False)


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (
            ["--features.kind", "mel", "--features.mel_fmax", "20000"],
            "features.mel_fmax (--features.mel_fmax) must",
        ),
        (
            ["--features.mel_fmax", "8000"],
            "is for features.kind mel only",
        ),  # with the CQT: refused, not ignored
    ],
)
def test_mel_fmax_is_checked_and_refused_beside_the_cqt(tmp_path, capsys, flags, fragment):
    argv = ["demo", "--preset", "quick_test", "--processes", "1", *flags, "--run_dir", str(tmp_path / "run")]
    assert chords.main(argv) != 0
    assert fragment in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        # bins_per_semitone of the training windows came out 0: "ChordSongConfig.bins_per_semitone must be >= 1"
        (
            ["--features.bins_per_octave", "7"],
            "features.bins_per_octave (--features.bins_per_octave) must be",
        ),
        # 208 of the 216 bands fall between the FFT's bins: trained on, with a warning naming n_fft and n_mels
        (["--features.fmin", "11000"], "leave 208 of them between the 4096-sample FFT's bins"),
        (["--features.n_bins", "2000"], "leave 282 of them between the 4096-sample FFT's bins"),
        # CQT-only: the same mel features were cached a second time, and --init_from between the two refused
        (
            ["--features.bins_per_octave", "24"],
            "features.bins_per_octave (--features.bins_per_octave) is for",
        ),
        (
            ["--features.bass_view_filter_scale", "0.9"],
            "features.bass_view_filter_scale (--features.bass_view_filter_scale) is for features.kind cqt",
        ),
    ],
)
def test_mel_settings_that_cannot_train_are_refused_by_flag_before_any_feature(
    tmp_path, capsys, flags, fragment
):
    argv = ["demo", "--preset", "quick_test", "--processes", "1", "--features.kind", "mel", *flags,
            "--data.cache_dir", str(tmp_path / "cache"), "--run_dir", str(tmp_path / "run")]  # fmt: skip
    assert chords.main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and "ChordSongConfig" not in err and "n_mels" not in err, err
    assert not (tmp_path / "cache").exists() and not (tmp_path / "run").exists()


def test_a_resume_or_init_from_across_feature_kinds_names_the_kind_flag_alone(tmp_path, capsys):
    """Resuming a mel run without ``--features.kind mel`` was refused naming four settings, three of which
    (bass_view_bins, max_pitch_shift, tuning_correction) the user never set: they follow the kind. The
    refusal names the one flag to give, and only a setting that differs beyond what the kind sets."""
    run_dir = tmp_path / "mel"
    argv = ["demo", "--preset", "quick_test", "--processes", "1", "--data.cache_dir", str(tmp_path / "cache")]
    assert chords.main([*argv, "--features.kind", "mel", "--run_dir", str(run_dir)]) == 0
    kind = (
        "features.kind ('mel' there, 'cqt' here: --features.kind mel gives the checkpoint's, and with it its "
    )
    capsys.readouterr()
    resume = [
        "--num_epochs",
        "9",
        "--run_dir",
        str(run_dir),
        "--resume",
        str(run_dir / "checkpoints" / "last"),
    ]
    assert chords.main([*argv, *resume]) == 2
    err = capsys.readouterr().err
    assert (
        f"in {kind}features.bass_view_bins, features.max_pitch_shift and features.tuning_correction);" in err
    ), err
    assert "features.max_pitch_shift (" not in err and "features.bass_view_bins (" not in err, err
    init_from = ["--run_dir", str(tmp_path / "cqt"), "--init_from", str(run_dir), "--features.kind", "cqt"]
    assert chords.main([*argv, *init_from, "--features.max_pitch_shift", "3"]) == 2
    err = capsys.readouterr().err
    assert f"{kind}features.bass_view_bins and features.tuning_correction), " in err, err
    assert "features.max_pitch_shift (0 there, 3 here)" in err and "tuning_correction (" not in err, err
    assert not (tmp_path / "cqt").exists()


def test_a_mel_checkpoint_trained_with_bands_now_refused_still_predicts(tmp_path, capsys):
    """A mel run trained before empty bands were refused (``--features.fmin 11000`` trained, exit 0) keeps a
    checkpoint that predict reads: the check is for new settings, not for what a model was trained on."""
    run_dir = tmp_path / "run"
    argv = ["demo", "--preset", "quick_test", "--processes", "1", "--features.kind", "mel",
            "--features.n_bins", "64", "--data.cache_dir", str(tmp_path / "cache"),
            "--run_dir", str(run_dir)]  # fmt: skip
    assert chords.main(argv) == 0
    # (the settings such a run stored: 64 bands from 11000 Hz, 56 of them between the FFT's bins)
    state_file = run_dir / "checkpoints" / "best" / ckpt.STATE_FILE
    state = json.loads(state_file.read_text())
    state["module_state"][CHECKPOINT_KEY]["features"]["fmin"] = 11000.0
    state_file.write_text(json.dumps(state))
    capsys.readouterr()
    assert chords.main([*argv[:-4], "--features.fmin", "11000", *argv[-4:]]) == 2  # (a new run: refused)
    assert "between the 4096-sample FFT's bins" in capsys.readouterr().err
    songs = generate_demo_songs(tmp_path / "songs", n_songs=1, seed=7, song_seconds=6)
    assert chords.main(["predict", "--checkpoint", str(run_dir), str(songs[0].audio_path)]) == 0, (
        capsys.readouterr().err
    )
    assert ChordPredictor.from_checkpoint(run_dir).features.fmin == 11000


def test_stored_features_without_a_kind_read_as_the_cqt_with_its_cache_key():
    """A checkpoint written before mel features existed stored no kind: its features are the CQT, and a
    CQT's cache key is the one written before (no mel setting in it)."""
    old = {k: v for k, v in asdict(ChordFeatureConfig()).items() if k not in ("kind", "mel_fmax")}
    features = ChordFeatureConfig.from_stored(old)
    assert features.kind == "cqt" and features.key() == ChordFeatureConfig().key()
    assert "mel_fmax" not in features.to_dict() and features.to_dict()["kind"] == "chord_cqt"
    mel = ChordFeatureConfig.from_stored({**old, "kind": "mel", "max_pitch_shift": 0, "bass_view_bins": 0,
                                          "tuning_correction": False})  # fmt: skip
    assert mel.key().startswith("chordmel-") and mel.feature_rows == mel.n_bins


def test_a_relative_data_dir_of_a_config_found_beside_the_file_says_where_paths_are_read_from(
    tmp_path, monkeypatch, capsys
):
    """`train --config ../proj/run.yaml` with `data.data_dir: songs` (the folder beside run.yaml) from another
    working folder said only "data.data_dir .../elsewhere/songs (in ../proj/run.yaml): no such folder": a
    relative path in a file is read from the working folder, which the message now says, naming the folder
    the user meant."""
    (tmp_path / "proj" / "songs").mkdir(parents=True)
    (tmp_path / "proj" / "run.yaml").write_text("data:\n  data_dir: songs\n")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    monkeypatch.setattr(chords, "run_training", lambda *a, **k: pytest.fail("trained without its songs"))
    assert chords.main(["train", "--config", "../proj/run.yaml"]) == 2
    err = capsys.readouterr().err
    assert "no such folder" in err
    assert (
        f"a relative path in a --config file is read from the working folder ({tmp_path / 'elsewhere'})"
        in err
    )
    assert f"--data {Path('../proj/songs')}" in err


def test_a_config_data_dir_that_climbs_out_with_dotdot_is_found_beside_the_file_too(
    tmp_path, monkeypatch, capsys
):
    """`data.data_dir: ../music/songs` in proj/cfg/run.yaml, run from another folder: the file's relative path
    was made absolute from the working folder with its `..` folded away, so the folder beside the file (the
    one the README says is named, with the --data to pass) was never looked for; the message named only
    the missing folder."""
    (tmp_path / "proj" / "music" / "songs").mkdir(parents=True)
    (tmp_path / "proj" / "cfg").mkdir()
    (tmp_path / "proj" / "cfg" / "run.yaml").write_text("data:\n  data_dir: ../music/songs\n")
    (tmp_path / "work" / "here").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "work" / "here")
    monkeypatch.setattr(chords, "run_training", lambda *a, **k: pytest.fail("trained without its songs"))
    assert chords.main(["train", "--config", str(tmp_path / "proj" / "cfg" / "run.yaml")]) == 2
    err = capsys.readouterr().err
    assert "no such folder" in err and "is read from the working folder" in err
    assert f"--data {Path('../../proj/music/songs')}" in err


def test_the_data_folder_beside_a_config_file_is_named_quoted_for_the_shell(tmp_path, monkeypatch, capsys):
    """The hint `pass --data ../proj/my songs [live]` for a config's `data.data_dir` found beside the file was
    printed unquoted: pasted into a shell it is three arguments and a glob."""
    (tmp_path / "proj" / "my songs [live]").mkdir(parents=True)
    (tmp_path / "proj" / "run.yaml").write_text("data:\n  data_dir: 'my songs [live]'\n")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    monkeypatch.setattr(chords, "run_training", lambda *a, **k: pytest.fail("trained without its songs"))
    assert chords.main(["train", "--config", "../proj/run.yaml"]) == 2
    assert "pass --data '../proj/my songs [live]'" in capsys.readouterr().err


def test_a_resume_whose_run_record_is_a_fifo_names_the_reason_once(tiny_run, tmp_path):
    """A downloaded run whose config.json was a FIFO was refused 'for 2 reasons: (1) config.json: is a FIFO, not
    a regular file; (2)' the same again: two checks read the run record."""
    _, run_dir = tiny_run
    copy = tmp_path / "downloaded"
    shutil.copytree(run_dir, copy)
    (copy / "config.json").unlink()
    os.mkfifo(copy / "config.json")
    last = copy / "checkpoints" / "last"
    args = chords._training_parser("chords", "", needs_data=False).parse_args(
        [*TINY_FLAGS, "--num_epochs", "3", "--resume", str(last)]
    )
    with pytest.raises(ValueError) as refused:
        chords_train.check_resume_settings(chords._config_from_args(args), last)
    assert (
        str(refused.value)
        == f"cannot resume from {last}: {copy / 'config.json'}: is a FIFO, not a regular file"
    )


def test_print_config_prints_the_settings_a_run_would_use_as_a_file_that_repeats_them(
    tmp_path, capsys, monkeypatch
):
    """A script could not see the settings a preset, a --config file and flags resolve to without starting a
    run (config.json is written once it has started). --print_config prints them on stdout, as JSON that
    --config takes back, and starts nothing."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.yaml").write_text("num_epochs: 7\nmodel:\n  d_model: 48\n")
    argv = ["--preset", "quick_test", "--config", "mine.yaml", "--num_epochs", "3"]
    assert chords.main([*argv, "--print_config"]) == 0
    out, err = capsys.readouterr()
    printed = json.loads(out)
    assert printed["num_epochs"] == 3 and printed["model"]["d_model"] == 48, out  # (flags > file > preset)
    assert printed["model"]["n_layers"] == 1 and err == "", err  # (quick_test's one block)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.yaml"]  # (no run folder, no runs/)
    (tmp_path / "printed.json").write_text(out)
    assert chords.main(["--config", "printed.json", "--print_config"]) == 0
    assert json.loads(capsys.readouterr().out) == printed


@pytest.mark.parametrize("recipe", ["chords", "clap"])
def test_each_recipe_says_its_version_as_the_audiotrain_command_does(recipe, capsys):
    """`audiotrain --version` answered, but `audiotrain chords --version` (and python -m
    audiotrain.recipes.chords --version) was an unrecognized argument, exit 2: a CI job that logs the
    version of the command it runs got an error."""
    from audiotrain._build import build_version
    from audiotrain.recipes.clap import cli as clap

    assert {"chords": chords, "clap": clap}[recipe].main(["--version"]) == 0
    out, err = capsys.readouterr()
    assert out == f"python -m audiotrain.recipes.{recipe} {build_version()}\n" and err == "", (out, err)


@pytest.mark.parametrize(
    "text, hint",
    [
        # (a section's setting at the top level: the close match was the section's name, 'data')
        ("data_dir: songs\n", "did you mean 'data.data_dir'?"),
        ("d_model: 48\n", "did you mean 'model.d_model'?"),
        # (a flag of the command, not a setting: named as the flag to pass)
        ("run_dir: runs/mine\n", "run_dir is the command's --run_dir flag, not a --config setting"),
        ("resume: runs/mine/checkpoints/last\n", "resume is the command's --resume flag"),
    ],
)
def test_a_config_key_that_belongs_elsewhere_is_named_where_it_belongs(
    text, hint, tmp_path, capsys, monkeypatch
):
    """A file's `data_dir: songs` got "did you mean 'data'?", and `run_dir: runs/mine` a list of the fields
    with no word on where a run folder is given."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.yaml").write_text(text)
    assert chords.main(["train", "--config", "mine.yaml", "--print_config"]) == 2
    _one_error_line(capsys, "mine.yaml line 1: unknown field", hint)


def test_the_recipes_help_says_what_each_exit_status_means(capsys):
    """A CI script branches on the exit status, but only evaluate's and predict's own --help named one (1,
    for songs skipped); which status meant a refusal and which an interruption was not said anywhere."""
    assert chords.main(["--help"]) == 0
    out = capsys.readouterr().out
    statuses = out[out.index("exit status:") :]
    for status in ("0 ", "1 ", "2 ", "130 ", "143 "):
        assert f"\n  {status}" in statuses, out


@pytest.mark.parametrize(
    "argv, refusal",
    [
        (["--processes", "3", "--batch_size", "4"], "--processes 3: the batch (4) is split between"),
        (["cv", "--processes", "2"], "--processes 2: cv trains its folds in this process"),
        (["--resume", "nowhere"], "checkpoint folder nowhere does not exist"),  # (its settings are the run's)
    ],
)
def test_print_config_refuses_the_settings_a_run_refuses(argv, refusal, tmp_path, capsys, monkeypatch):
    """--print_config printed the settings and exited 0 for a process count the run then refused (the demo's
    --processes 3 with a batch of 4, cv's --processes 2): a script that checked the settings with it was told
    they were good."""
    monkeypatch.chdir(tmp_path)
    status = chords.main([*argv, "--preset", "quick_test", "--print_config"])
    out, err = capsys.readouterr()
    assert status == 2 and out == "" and refusal in err, (out, err)


def test_the_help_says_that_status_1_is_also_a_run_stopped_by_a_full_disk_or_too_little_memory(capsys):
    """The help said 1 meant 'done, but songs were skipped ... or stdout could not be written', while a run
    that a full disk stopped, Trainer.fit's refusal of a model too big for the memory left (53bb560d) and a
    ulimit -v hit as the modules load are 1 too: a CI script trusting the help took them for done. A reader
    that quit early (141) was not listed."""
    assert chords.main(["--help"]) == 0
    out = capsys.readouterr().out
    status_1 = " ".join(out[out.index("\n  1 ") : out.index("\n  2 ")].split())
    assert "full disk" in status_1 and "memory" in status_1 and "ulimit -v" in status_1, status_1
    assert "\n  141 " in out, out


def test_runs_lists_a_run_whose_evaluation_failed_as_failed_with_its_error(diverged_run, capsys):
    """A trial that diverged trained to its end and its held-out evaluation raised; `python -m audiotrain runs`
    listed it as "interrupted" with "--resume RUN/checkpoints/last with the same flags scores it", a resume
    that fails the same way. It is "failed", with the evaluation's error (which says what to change)."""
    from audiotrain.__main__ import main as audiotrain_main

    _, diverged, _ = diverged_run
    capsys.readouterr()
    assert audiotrain_main(["runs", str(diverged)]) == 0
    text = capsys.readouterr().out
    assert "interrupted" not in text and " failed " in text
    assert "its held-out evaluation failed: " in text and "lower learning_rate" in text


def test_a_chord_run_too_big_for_memory_names_the_recipes_flags_not_precision(tmp_path, monkeypatch):
    """Trainer.fit's refusal of a model too big for the memory left told a chord run's user to "train in
    precision='bf16-true'", a setting the chord recipe (command line or run_training) does not have. It names
    the recipe's model flags and says that it trains in float32."""
    from audiotrain.train import memory

    limit = (1000, "left under this process's ulimit -v limit of 0.0 GB")
    monkeypatch.setattr(memory, "training_memory_limit", lambda mapped_already=0: limit)
    silent = lambda *args, **kwargs: None  # noqa: E731
    with pytest.raises(memory.TrainingMemoryError) as refused:
        chords_train.run_training(
            _tiny_config(tmp_path / "cache"), tmp_path / "run", log=silent, results=silent
        )
    message = str(refused.value)
    assert "precision=" not in message and "bf16" not in message
    assert "choose a smaller model (--model.d_model, --model.n_layers or --model.ff_dim" in message
    assert "trains in float32" in message and message.endswith(", or raise that limit")


def test_a_misspelt_or_other_librarys_keyword_of_training_config_gets_a_did_you_mean():
    """``TrainingConfig(lr=1e-3)`` and ``TrainingConfig(num_epoch=3)`` were Python's plain "unexpected keyword
    argument", where a --config file's keys (`OTHER_LIBRARIES_NAMES`) and create_trainer's name the setting
    meant."""
    with pytest.raises(TypeError, match=r"keyword argument 'lr' \(did you mean 'learning_rate'\?\)"):
        TrainingConfig(lr=1e-3)
    with pytest.raises(TypeError, match=r"keyword argument 'num_epoch' \(did you mean 'num_epochs'\?\)"):
        TrainingConfig(num_epoch=3)
    assert TrainingConfig(learning_rate=1e-3).learning_rate == 1e-3


def test_a_run_whose_resumed_evaluation_was_stopped_is_not_listed_with_the_earlier_evaluations_error(
    diverged_run, tmp_path, capsys, monkeypatch
):
    """A run whose held-out evaluation failed (its trained.json's evaluation_failed), resumed to score it
    once the cause was fixed and stopped by Ctrl-C during that evaluation, was listed by `python -m audiotrain
    runs` as "failed" with the earlier error, which no longer held: the resume started its evaluation anew."""
    from audiotrain.__main__ import main as audiotrain_main

    silent = lambda *args, **kwargs: None  # noqa: E731
    config, shared, _ = diverged_run
    shutil.copytree(shared, tmp_path / "diverged", symlinks=True)  # (this test's resume rewrites its record)
    record = json.loads((tmp_path / "diverged" / chords_train.TRAINED_FILE).read_text())
    assert chords_train.EVALUATION_FAILED_KEY in record

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(chords_train, "_evaluate_held_out", stopped)
    checkpoint = tmp_path / "diverged" / record["checkpoint"]
    result = chords_train.evaluate_trained_run(config, tmp_path / "diverged", None, checkpoint, log=silent)
    assert result.interrupted
    capsys.readouterr()
    assert audiotrain_main(["runs", str(tmp_path / "diverged")]) == 0
    text = capsys.readouterr().out
    assert "its held-out evaluation failed" not in text and "interrupted" in text


def test_the_help_lists_the_status_of_every_stop_signal_a_run_obeys(capsys):
    """`sbatch --signal=USR1@120` stops a run as Ctrl-C does, with status 138 (`interrupted (SIGUSR1)`), but
    the help's exit statuses, which a CI script branches on, listed 130 and 143 alone: 138 read as unknown."""
    assert chords.main(["--help"]) == 0
    out = capsys.readouterr().out
    statuses = out[out.index("exit status:") : out.index("examples:")]
    for name, said in (("SIGINT", "Ctrl-C"), ("SIGTERM", "SIGTERM"), ("SIGUSR1", "SIGUSR1")):
        if hasattr(signal, name):
            listed = re.search(rf"\n  {128 + getattr(signal, name)} +(.*(\n {{7}}.*)*)", statuses)
            assert listed and said in " ".join(listed.group(1).split()), statuses


def test_a_warning_filter_another_thread_sets_during_a_command_outlives_it(monkeypatch):
    """main hid the annotation warnings its folder scan reports once with `warnings.catch_warnings` around
    the whole command, which puts back the process's filter list it found as the command ends: a filter that
    another thread of a sweep set during a run of main(argv) (its own run starting) was dropped."""
    import warnings

    from audiotrain.chords.lab import SeveralAnnotationsWarning

    def a_run_while_another_thread_sets_a_filter(argv, demo):
        warnings.filterwarnings("ignore", message="a filter another thread set")  # (as that thread would)
        return 0

    monkeypatch.setattr(chords, "_cmd_train", a_run_while_another_thread_sets_a_filter)
    try:
        assert chords.main(["train", "--data", "songs"]) == 0
        assert any(f[1] and f[1].pattern == "a filter another thread set" for f in warnings.filters)
        assert not any(
            f[2] is SeveralAnnotationsWarning for f in warnings.filters
        )  # (the command's own: gone)
    finally:
        warnings.filters[:] = [f for f in warnings.filters if not (f[1] and "another thread" in f[1].pattern)]


def test_a_missing_checkpoint_names_the_folder_whose_checkpoints_it_lists(tmp_path, monkeypatch, capsys):
    """`predict --checkpoint nowhere song.wav` said "checkpoints there (newest first): exported" without
    naming where "there" was (the current folder, or the folder the mistyped name was in)."""
    import soundfile as sf

    monkeypatch.chdir(tmp_path)
    sf.write("song.wav", np.zeros(8000, dtype=np.float32), 8000)
    for checkpoint in ("exported", "runs/r1/checkpoints"):
        (tmp_path / checkpoint).mkdir(parents=True)
        (tmp_path / checkpoint / ckpt.STATE_FILE).write_text("{}")
    assert chords.main(["predict", "--checkpoint", "nowhere", "song.wav"]) == 2
    assert "; checkpoints in the current folder (newest first): exported" in capsys.readouterr().err
    assert chords.main(["predict", "--checkpoint", "runs/r2", "song.wav"]) == 2
    assert "; checkpoints in runs (newest first): runs/r1/checkpoints" in capsys.readouterr().err


def test_a_run_whose_demo_songs_a_forced_cache_clear_deleted_says_so_and_how_to_score_it(
    tmp_path, capsys, monkeypatch
):
    """`python -m audiotrain cache clear --force` from another terminal, as the run trained, deleted the demo
    songs its held-out evaluation then read: the run ended with "error: [Errno 2] No such file or directory:
    '.../song_000.lab'", saying neither why nor that the trained run is saved and scored by a resume."""
    from audiotrain.__main__ import main as audiotrain_main

    monkeypatch.chdir(tmp_path)
    cache, run = tmp_path / "cache", tmp_path / "run"
    written = chords_train._write_training_outputs

    def cleared_meanwhile(*args, **kwargs):  # the other terminal's clear, once training is over
        best = written(*args, **kwargs)
        assert audiotrain_main(["cache", "clear", "--force", "--root", str(cache)]) == 0
        return best

    monkeypatch.setattr(chords_train, "_write_training_outputs", cleared_meanwhile)
    silent = lambda *args, **kwargs: None  # noqa: E731
    with pytest.raises(FileNotFoundError) as failed:
        chords_train.run_training(_tiny_config(cache), run, log=silent, results=silent)
    message = str(failed.value)
    assert "deleted or moved since the run read it" in message and "cache clear --force" in message, message
    assert f"--resume {run / 'checkpoints' / 'last'} with the same flags scores" in message, message
    capsys.readouterr()
    assert audiotrain_main(["runs", str(run)]) == 0
    assert "deleted or moved since the run read it" in capsys.readouterr().out


def test_a_file_of_the_run_folder_itself_gone_after_training_is_not_blamed_on_a_cleared_demo_cache(
    tmp_path, monkeypatch
):
    """Since 478a7605 any file missing after training was said as demo songs a forced `cache clear` deleted,
    with a resume to score them once the songs are back: a file of the run's own folder (removed by hand
    meanwhile) is not one of those, and its error is left as it was."""
    cache, run = tmp_path / "cache", tmp_path / "run"
    written = chords_train._write_training_outputs

    def own_file_gone(*args, **kwargs):
        written(*args, **kwargs)
        raise FileNotFoundError(2, "No such file or directory", str(run / "history.json"))

    monkeypatch.setattr(chords_train, "_write_training_outputs", own_file_gone)
    silent = lambda *args, **kwargs: None  # noqa: E731
    with pytest.raises(FileNotFoundError) as failed:
        chords_train.run_training(_tiny_config(cache), run, log=silent, results=silent)
    assert "deleted or moved since the run read it" not in str(failed.value)
    assert failed.value.filename == str(run / "history.json")


@pytest.mark.parametrize("flag", ["--max_time", "--train.max_time"])
def test_a_time_limit_flag_says_how_a_chord_run_stops_on_a_clusters_time_limit(flag, tmp_path, capsys):
    """``chords train --max_time 00:02:00:00`` (the Trainer's setting) got only argparse's "unrecognized
    arguments", with no word of what the recipes do at a time limit instead."""
    assert chords.main(["train", "--data", str(tmp_path), flag, "00:02:00:00"]) == 2
    err = capsys.readouterr().err
    assert f"; {flag}: the recipes take no time limit" in err and "SIGTERM" in err and "--resume" in err, err


@pytest.mark.parametrize("flag", ["--class_weights", "--loss.class_weights", "--balanced_sampling"])
def test_a_class_weights_flag_names_balance_classes_not_another_weight(flag, tmp_path, capsys):
    """A musician whose rare chord types (dim, aug, sus) drown in maj and min tries torch's habit,
    ``--class_weights 1,2``, and was told "did you mean --loss.bass_weight?", a head's weight, not a
    class's."""
    assert chords.main(["train", "--data", str(tmp_path), flag, "1,2"]) == 2
    err = capsys.readouterr().err
    assert "bass_weight" not in err, err
    assert f"; {flag}: the chord recipe takes no weights of your own" in err, err
    assert "--loss.balance_classes true" in err and "ChordRecognitionLoss(class_weights=...)" in err, err


def test_a_class_balanced_run_says_each_chord_types_weight(tmp_path):
    """A musician whose songs are mostly maj and min, with a few dim or aug chords, turned on
    --loss.balance_classes and the run said nothing of what it weighed: not how much a rare type is lifted,
    nor which types weigh 0. The run's lines give each type present with its weight, heaviest first."""
    config = _tiny_config(tmp_path / "cache")
    config.loss.balance_classes = True
    lines = []
    silent = lambda *args, **kwargs: None  # noqa: E731
    chords_train.run_training(config, tmp_path / "run", log=lines.append, results=silent)
    [said] = [line for line in lines if line.startswith("class-balanced chord-type loss")]
    listed, _, zero = said.partition("weights: ")[2].partition("; ")
    weights = {name: float(weight) for name, weight in (item.rsplit(" ", 1) for item in listed.split(", "))}
    assert list(weights.values()) == sorted(weights.values(), reverse=True) and "N" in weights, said
    assert np.mean(list(weights.values())) == pytest.approx(1.0, abs=0.01), said  # (mean 1 over those)
    assert zero == f"{32 - len(weights)} of 32 types weigh 0 (not in the training songs)", said


@pytest.mark.parametrize("flag", ["--class-weights", "--max-time"])
def test_a_hyphenated_spelling_of_an_absent_flag_gets_its_reason(flag, tmp_path, capsys):
    """``--class-weights 1,2`` (a hyphen, as many tools spell flags) was answered 'did you mean
    --loss.bass_weight?', where ``--class_weights`` names --loss.balance_classes; ``--max-time`` likewise
    missed what ``--max_time`` says of a time limit."""
    assert chords.main(["train", "--data", str(tmp_path), flag, "1"]) == 2
    err = capsys.readouterr().err
    assert "did you mean" not in err, err
    assert f"; {flag}: the" in err and ("balance_classes" in err or "time limit" in err), err


def test_a_disk_that_fills_during_the_feature_pass_says_which_features_were_kept(
    tmp_path, monkeypatch, capsys
):
    """The disk filled after 2 of a run's 4 songs' entries were written; its last line said "the features
    of this run's 4 songs that it lacked were computed in memory and not kept", read as none kept."""
    import errno

    from audiotrain.features import cache as feature_cache

    data = tmp_path / "songs"
    generate_demo_songs(data, n_songs=4, seed=9, song_seconds=6)
    real_write = feature_cache.write_atomically
    entries: list[Path] = []

    def full_after_two_entries(path, write):
        if Path(path).suffix == ".npy":
            if len(entries) == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
            entries.append(Path(path))
        real_write(path, write)

    monkeypatch.setattr(feature_cache, "write_atomically", full_after_two_entries)
    cache = tmp_path / "cache"
    flags = ["train", "--data", str(data), *TINY_FLAGS, "--num_epochs", "1", "--data.cache_dir", str(cache)]
    assert chords.main([*flags, "--run_dir", str(tmp_path / "run"), "--data.test_fraction", "0"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("feature cache:")]
    assert lines == [
        f"feature cache: {entries[0].parent} cannot be written (No space left on device): 2 of this run's 4 "
        "songs' features are there; the other 2 songs' were computed in memory and not kept"
    ]


@pytest.mark.parametrize("name", ["quick_test", "development", "production"])
def test_training_config_from_preset_is_the_command_lines_preset_and_takes_overrides(name):
    """From Python a preset was reachable only as the raw dict `PRESETS[name]` (`TrainingConfig(preset=...)`
    was "unexpected keyword argument 'preset' (did you mean 'processes'?)"), and changing one key of its
    data section needed a hand merge. `from_preset` resolves it as ``--preset NAME`` does, then the overrides
    as flags: they win, and a nested one keeps the preset's other keys of its section."""
    from audiotrain.recipes.chords.config import PRESETS

    parser = chords._training_parser("chords", "", needs_data=False)
    assert TrainingConfig.from_preset(name) == chords._config_from_args(parser.parse_args(["--preset", name]))
    as_flags = ["--preset", name, "--num_epochs", "3", "--data.demo_songs", "8", "--model.d_model", "64"]
    flagged = chords._config_from_args(parser.parse_args(as_flags))
    assert flagged.num_epochs == 3 and flagged.data.demo_songs == 8
    nested = TrainingConfig.from_preset(name, num_epochs=3, data={"demo_songs": 8}, model={"d_model": 64})
    dotted = TrainingConfig.from_preset(name, num_epochs=3, **{"data.demo_songs": 8, "model.d_model": 64})
    assert nested == dotted == flagged
    for key, value in PRESETS[name].get("data", {}).items():  # (the preset's other data settings stay)
        assert key == "demo_songs" or getattr(nested.data, key) == value


def test_training_config_from_preset_names_an_unknown_preset_or_override():
    with pytest.raises(ValueError, match=r"unknown preset 'fast'; the presets are quick_test, development"):
        TrainingConfig.from_preset("fast")
    with pytest.raises(ValueError, match=r"from_preset\('quick_test'\): unknown field 'data.demo_song'; did"):
        TrainingConfig.from_preset("quick_test", data={"demo_song": 8})
    with pytest.raises(ValueError, match=r"from_preset\('quick_test'\): unknown field 'num_epoch'; did you"):
        TrainingConfig.from_preset("quick_test", num_epoch=3)
    with pytest.raises(ValueError, match=r"num_epochs \(--num_epochs\) must be an integer > 0"):
        TrainingConfig.from_preset("quick_test", num_epochs=0)
    with pytest.raises(ValueError, match=r"section 'data' is given both as a dict"):
        TrainingConfig.from_preset("quick_test", data={"demo_songs": 8}, **{"data.window_frames": 64})
    with pytest.raises(
        TypeError, match=r"'preset': a preset is applied by TrainingConfig.from_preset\('quic"
    ):
        TrainingConfig(preset="quick_test")


#: What the chord commands' --help and usage errors must not import (each costs tenths of a second of CPU in a
#: shell loop that calls the recipe per file): the trainer, the other recipe, and the large libraries.
HEAVY_FOR_QUICK_COMMANDS = (
    "audiotrain.train.trainer",
    "audiotrain.recipes.chords.train",
    "audiotrain.recipes.clap",
    "scipy",
    "librosa",
    "matplotlib",
    "torch",
    "transformers",
)


@pytest.mark.parametrize(
    "argv, status",
    [
        (["--help"], 0),
        (["predict", "--help"], 0),
        (["evaluate", "--help"], 0),
        (["score", "--help"], 0),
        (["train", "--help"], 0),
        (["export", "--help"], 0),
        (["--no_such_flag"], 2),
        (["predict", "--no_such_flag"], 2),
        (["train", "--num_epochs", "x"], 2),
    ],
)
def test_help_and_usage_errors_do_not_import_the_trainer(argv, status):
    """`chords predict --help` (and evaluate's, score's, a mistyped flag's usage error) took 0.9-1.1 s of CPU,
    0.3 s of it importing the trainer through audiotrain.recipes.chords.train, which only training uses. A
    later top-level import must not bring it (or scipy, torch, the CLAP recipe) back."""
    done, got, loaded = run_as_main("audiotrain.recipes.chords", argv, HEAVY_FOR_QUICK_COMMANDS)
    assert (got, loaded) == (status, []), done.stderr


def test_the_recipes_help_imports_neither_numpy_nor_the_collectives():
    """`python -m audiotrain.recipes.chords --help` is printed before the recipe's modules load, yet took
    0.24 s of CPU: its exit went through `audiotrain.distributed.exit_rank`, whose package imported the
    collectives (mlx and numpy) to learn that this one process is in no job. It takes half that now."""
    heavy = ("numpy", "audiotrain.distributed.collectives")
    done, status, loaded = run_as_main("audiotrain.recipes.chords", ["--help"], heavy)
    assert "usage: python -m audiotrain.recipes.chords" in done.stdout
    assert (status, loaded) == (0, []), done.stderr
