"""Seed 002, the chord training guide: its Quick Start and Complete Example on MLX, and the Trainer's methods.

Import paths as issue 20 maps them: `src.model.*` → `audiotrain.models`, `src.training` →
`audiotrain.recipes.chords`, `src.training.metrics` → `audiotrain.metrics`, torch's DataLoader →
`audiotrain.DataLoader`. Sizes (clips, epochs) are made small.
"""

import json

from audiotrain.recipes.chords.example import SyntheticChordClips

import mlx.core as mx
import numpy as np
import pytest

GUIDE_HISTORY_KEYS = {
    "train_loss",
    "val_loss",
    "val_chord_type_acc",
    "val_root_acc",
    "val_bass_note_acc",
    "learning_rate",
}


@pytest.fixture(scope="module")
def clip_datasets():
    """The guide's synthetic train and val clips, made once (their audio is most of a loader's making):
    read-only; each test takes new loaders over them."""
    return SyntheticChordClips(24, seconds=0.5, seed=0), SyntheticChordClips(8, seconds=0.5, seed=1)


@pytest.fixture
def clip_loaders(clip_datasets):
    from audiotrain import DataLoader

    train, val = clip_datasets
    return DataLoader(train, batch_size=8, shuffle=True), DataLoader(val, batch_size=8)


def test_seed002_quick_start(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train_dataset = SyntheticChordClips(24, seconds=0.5, seed=0)
    val_dataset = SyntheticChordClips(8, seconds=0.5, seed=1)
    # --- seed 002, Quick Start verbatim (num_epochs reduced) ------------------------------------------
    from audiotrain import DataLoader
    from audiotrain.models import ChordRecognitionLoss, ChordRecognitionModel
    from audiotrain.recipes.chords import Trainer, TrainingConfig

    # Initialize model
    model = ChordRecognitionModel()

    # Create loss function
    criterion = ChordRecognitionLoss(
        chord_type_weight=1.0,
        root_weight=1.0,
        bass_weight=0.5,
        label_smoothing=0.1,
    )

    # Prepare data loaders
    train_loader = DataLoader(train_dataset, batch_size=16)
    val_loader = DataLoader(val_dataset, batch_size=16)

    # Configure training
    config = TrainingConfig(
        learning_rate=1e-4,
        num_epochs=2,
        warmup_epochs=5,
        scheduler="cosine",
    )

    # Create trainer
    trainer = Trainer(
        model=model,
        train_loader=train_loader,
        val_loader=val_loader,
        config=config,
        criterion=criterion,
    )

    # Train
    history = trainer.train()

    # Save history
    trainer.export_history("history.json")
    # --- end of seed code -----------------------------------------------------------------------------
    assert set(history) == GUIDE_HISTORY_KEYS
    assert all(len(values) == 2 for values in history.values())
    assert all(0 <= a <= 100 for a in history["val_chord_type_acc"])  # percentages, as the guide's
    assert history["learning_rate"][0] < 1e-4  # still warming up (5 warmup epochs)
    assert json.loads((tmp_path / "history.json").read_text()) == history
    assert (tmp_path / "checkpoints" / "best").is_dir() and (tmp_path / "checkpoints" / "last").is_dir()


def test_train_epoch_validate_checkpoint_and_resume(clip_loaders, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from audiotrain.models import ChordRecognitionLoss, ChordRecognitionModel
    from audiotrain.recipes.chords import Trainer, TrainingConfig

    train_loader, val_loader = clip_loaders
    config = TrainingConfig(learning_rate=1e-3, num_epochs=3, batch_size=8, progress_bar=False)

    def make():
        return Trainer(ChordRecognitionModel(), train_loader, val_loader, config, ChordRecognitionLoss())

    trainer = make()
    first = trainer.train_epoch()
    assert {"total_loss", "chord_type_loss", "root_loss", "bass_note_loss", "learning_rate"} <= set(first)
    second = trainer.train_epoch()
    assert trainer.epochs_done == 2 and second["learning_rate"] != first["learning_rate"]
    metrics = trainer.validate()
    assert {"total_loss", "chord_type_acc", "root_acc", "bass_note_acc"} <= set(metrics)
    saved = trainer.save_checkpoint("checkpoints/my_checkpoint.pt")
    assert (saved / "model.safetensors").is_file()

    restored = make()
    restored.load_checkpoint(saved)
    assert restored.validate() == pytest.approx(metrics, rel=1e-6)
    history = restored.train()  # resumes at epoch 2 and trains the third
    assert restored.epochs_done == 3 and len(history["train_loss"]) == 3
    # The third epoch continues the schedule, not a fresh one.
    assert history["learning_rate"][2] < history["learning_rate"][1]


def test_train_epoch_trains_in_train_mode_after_an_evaluation_in_eval_mode(
    clip_loaders, tmp_path, monkeypatch
):
    """As the guide's train loop (model.train() each epoch): the shared Trainer keeps the modes it is given,
    so the guide's Trainer sets train mode itself, e.g. after the Complete Example's `module.eval()`."""
    monkeypatch.chdir(tmp_path)
    from audiotrain.models import ChordRecognitionLoss, ChordRecognitionModel
    from audiotrain.recipes.chords import Trainer, TrainingConfig

    train_loader, val_loader = clip_loaders
    config = TrainingConfig(learning_rate=1e-3, num_epochs=1, batch_size=8, progress_bar=False)
    trainer = Trainer(ChordRecognitionModel(), train_loader, val_loader, config, ChordRecognitionLoss())
    trainer.module.eval()
    trainer.train_epoch()
    assert trainer.module.training


def test_seed002_device_setting(clip_loaders, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from audiotrain.models import ChordRecognitionLoss, ChordRecognitionModel
    from audiotrain.recipes.chords import Trainer, TrainingConfig

    # The guide's `device` ('cuda' if available, else 'cpu'); 'auto' is the default.
    train_loader, val_loader = clip_loaders
    config = TrainingConfig(num_epochs=1, batch_size=8, progress_bar=False, device="cpu")
    trainer = Trainer(ChordRecognitionModel(), train_loader, val_loader, config, ChordRecognitionLoss())
    trainer.train()
    assert trainer.shared.accelerator == "cpu" and trainer.shared.device == mx.cpu
    has_gpu = mx.metal.is_available() or (getattr(mx, "cuda", None) is not None and mx.cuda.is_available())
    assert TrainingConfig().device == "auto"
    assert TrainingConfig().training_device() == ("gpu" if has_gpu else "cpu")
    with pytest.raises(
        ValueError, match="TrainingConfig.device \\(--device\\) must be 'auto', 'cpu' or 'gpu'"
    ):
        TrainingConfig(device="tpu")
    monkeypatch.setattr(mx.metal, "is_available", lambda: False)
    if getattr(mx, "cuda", None) is not None:
        monkeypatch.setattr(mx.cuda, "is_available", lambda: False)
    for name in ("gpu", "cuda", "mps", "metal"):  # (Trainer's names for the GPU)
        with pytest.raises(ValueError, match=f"device \\(--device\\) is '{name}', but this MLX has no GPU"):
            TrainingConfig(device=name)
    # What to do names taking the CPU wheel out first (two backends' wheels overwrite each other).
    with pytest.raises(ValueError, match="pip uninstall mlx-cpu, then pip install 'audiotrain\\[cuda13\\]'"):
        TrainingConfig(device="gpu")


def test_a_resume_in_new_loaders_at_an_epoch_boundary_trains_the_same_weights(
    clip_datasets, tmp_path, monkeypatch
):
    # A resumed run builds its loaders afresh: the wrapper must pass the epoch on to the DataLoader
    # (`set_epoch`), or epoch 1 replays epoch 0's shuffle.
    monkeypatch.chdir(tmp_path)
    from audiotrain import DataLoader
    from audiotrain.models import ChordRecognitionLoss, ChordRecognitionModel
    from audiotrain.recipes.chords import Trainer, TrainingConfig

    from mlx.utils import tree_flatten

    def make(num_epochs, run_dir):
        mx.random.seed(0)
        train = DataLoader(clip_datasets[0], batch_size=8, shuffle=True)
        val = DataLoader(clip_datasets[1], batch_size=8)
        config = TrainingConfig(learning_rate=1e-3, num_epochs=num_epochs, batch_size=8, progress_bar=False)
        return Trainer(ChordRecognitionModel(), train, val, config, ChordRecognitionLoss(), run_dir=run_dir)

    def weights(trainer):
        return {name: np.array(value) for name, value in tree_flatten(trainer.model.parameters())}

    straight = make(2, "straight")
    straight.train()
    first = make(1, "stopped")
    first.train()
    saved = first.save_checkpoint("stopped/checkpoints/after_one")
    resumed = make(2, "stopped")
    resumed.load_checkpoint(saved)
    resumed.train()
    expected, got = weights(straight), weights(resumed)
    assert all(np.array_equal(expected[name], got[name]) for name in expected)


def test_a_second_run_in_the_same_folder_is_refused_unless_it_continues_or_overwrites(
    clip_loaders, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    from audiotrain.models import ChordRecognitionLoss, ChordRecognitionModel
    from audiotrain.recipes.chords import Trainer, TrainingConfig

    train_loader, val_loader = clip_loaders
    config = TrainingConfig(learning_rate=1e-3, num_epochs=1, batch_size=8, progress_bar=False)

    def make(**kwargs):
        return Trainer(
            ChordRecognitionModel(), train_loader, val_loader, config, ChordRecognitionLoss(), **kwargs
        )

    make().train()
    best = (tmp_path / "checkpoints" / "best" / "model.safetensors").read_bytes()
    with pytest.raises(FileExistsError, match=r"checkpoint_dir .*checkpoints already holds .*\(best, last\)"):
        make().train()
    assert (tmp_path / "checkpoints" / "best" / "model.safetensors").read_bytes() == best  # untouched
    continued = make()
    continued.load_checkpoint(tmp_path / "checkpoints" / "last")
    with pytest.warns(UserWarning, match="nothing to train"):
        continued.train()  # continuing that run is not refused (its one epoch is done)
    make(overwrite=True).train()


def test_batches_in_another_format_are_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from audiotrain.models import ChordModelConfig, ChordRecognitionModel
    from audiotrain.recipes.chords import Trainer, TrainingConfig

    bad = [(mx.zeros((2, 4000)), {"chord_type": mx.zeros((2,), dtype=mx.int32), "root": mx.zeros((2,))})]
    trainer = Trainer(ChordRecognitionModel(), bad, None, TrainingConfig(num_epochs=1, progress_bar=False))
    with pytest.raises(KeyError, match=r"train_loader batches must be .* batch 0 lacks \['bass_note'\]"):
        trainer.train()
    with pytest.raises(ValueError, match="the model reads 84 bins .* config.features.n_bins is 216"):
        Trainer(ChordRecognitionModel(ChordModelConfig(n_bins=84)), bad, None, TrainingConfig())
    with pytest.raises(ValueError, match="a bass view of 0 bins but config.features.bass_view_bins is 108"):
        Trainer(ChordRecognitionModel(ChordModelConfig(bass_view_bins=0)), bad, None, TrainingConfig())


def test_config_as_a_dict_is_read_as_a_config_files_keys_and_anything_else_is_refused(tmp_path):
    """`Trainer(config={...})`, as `TrainingConfig(data={...})` takes a dict section, failed later with
    "'dict' object has no attribute 'features'"."""
    from audiotrain.models import ChordRecognitionModel
    from audiotrain.recipes.chords import Trainer, TrainingConfig

    loader = [(mx.zeros((2, 4000)), {})]
    trainer = Trainer(
        ChordRecognitionModel(), loader, config={"num_epochs": 2, "data": {"window_frames": 64}}
    )
    assert trainer.config == TrainingConfig(num_epochs=2, data={"window_frames": 64})
    with pytest.raises(
        ValueError, match=r"Trainer\(config=\.\.\.\): unknown field 'num_epoch'; did you mean"
    ):
        Trainer(ChordRecognitionModel(), loader, config={"num_epoch": 1}, run_dir=tmp_path)
    with pytest.raises(TypeError, match=r"Trainer\(config=\.\.\.\): expected a TrainingConfig .*got str"):
        Trainer(ChordRecognitionModel(), loader, config="config.yaml", run_dir=tmp_path)


def test_seed002_complete_example(tmp_path, capsys):
    # The guide's `python -m src.training.example_usage` is `python -m audiotrain.recipes.chords.example`.
    from audiotrain.recipes.chords import example as chords_example

    assert chords_example.main(["--clips", "16", "--epochs", "1", "--out", str(tmp_path / "example")]) == 0
    out = capsys.readouterr().out
    assert (
        "MetricsTracker: total_loss=" in out
        and "bass_note_acc=" in out
        and "top-3 chord type accuracy" in out
    )
    history = json.loads((tmp_path / "example" / "history.json").read_text())
    assert set(history) == GUIDE_HISTORY_KEYS and np.isfinite(history["val_loss"][0])
    assert (tmp_path / "example" / "checkpoints" / "my_checkpoint" / "model.safetensors").is_file()
    with pytest.raises(SystemExit):
        chords_example.main(["--out", str(tmp_path / "example")])  # not empty: refused


def test_the_complete_examples_help_shows_its_example_commands_on_their_own_lines(capsys):
    """--help reflowed the docstring: the two example commands ran into the prose and each other."""
    from audiotrain.recipes.chords import example as chords_example

    with pytest.raises(SystemExit) as stopped:
        chords_example.main(["--help"])
    assert stopped.value.code == 0
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    assert "python -m audiotrain.recipes.chords.example --clips 32 --epochs 1 --out /tmp/example" in lines
    assert any(line.startswith("python -m audiotrain.recipes.chords.example  ") for line in lines)


def test_the_complete_example_with_a_relative_out_keeps_every_checkpoint_in_out(tmp_path, monkeypatch):
    from audiotrain.recipes.chords import example as chords_example

    monkeypatch.chdir(tmp_path)
    assert chords_example.main(["--clips", "16", "--epochs", "1", "--out", "ex"]) == 0
    assert sorted(p.name for p in (tmp_path / "ex" / "checkpoints").iterdir()) == [
        "best",
        "last",
        "my_checkpoint",
    ]
    assert not (tmp_path / "ex" / "ex").exists()


def test_train_then_train_epoch_then_train_keeps_the_best_and_the_patience(tmp_path, monkeypatch):
    """One run across train / train_epoch / train: `best` stays the best validation of all of them, the
    patience count goes on, and no internal warning or scratch checkpoint reaches the user."""
    import warnings

    monkeypatch.chdir(tmp_path)
    from audiotrain.models import ChordRecognitionLoss, ChordRecognitionModel
    from audiotrain.recipes.chords import Trainer, TrainingConfig

    def noise_batches(n_batches, seed):  # random labels: validation gets worse as training memorises
        rng = np.random.default_rng(seed)
        return [
            (
                0.1 * rng.standard_normal((8, 22050)).astype(np.float32),
                {k: rng.integers(0, n, 8) for k, n in (("chord_type", 32), ("root", 12), ("bass_note", 12))},
            )
            for _ in range(n_batches)
        ]

    train, val = noise_batches(2, 0), noise_batches(1, 1)
    config = TrainingConfig(
        learning_rate=3e-3, num_epochs=2, batch_size=8, patience=10, warmup_epochs=0, progress_bar=False
    )
    trainer = Trainer(ChordRecognitionModel(), train, val, config, ChordRecognitionLoss())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.train()
        trainer.train_epoch()
        config.num_epochs = 5
        history = trainer.train()
    assert not [w for w in caught if "callbacks this Trainer does not have" in str(w.message)]
    scores = [v for v in history["val_loss"] if v is not None]
    assert len(scores) == 4 and history["val_loss"][2] is None
    best_at = scores.index(min(scores))
    assert best_at < 3, f"the test needs the best validation before the last ({scores})"
    best = json.loads((tmp_path / "checkpoints" / "best" / "trainer_state.json").read_text())
    assert best["callback_metrics"]["val_loss"] == pytest.approx(min(scores))
    assert trainer.early_stopping.best_score == pytest.approx(min(scores))
    assert trainer.early_stopping.wait_count == len(scores) - 1 - best_at
    assert not (tmp_path / "checkpoints" / "continue").exists()


def test_train_after_the_run_ended_warns_in_the_guides_words_at_the_callers_line(
    clip_loaders, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    from audiotrain.models import ChordRecognitionLoss, ChordRecognitionModel
    from audiotrain.recipes.chords import Trainer, TrainingConfig

    train_loader, val_loader = clip_loaders
    config = TrainingConfig(learning_rate=1e-3, num_epochs=1, batch_size=8, progress_bar=False)
    trainer = Trainer(ChordRecognitionModel(), train_loader, val_loader, config, ChordRecognitionLoss())
    trainer.train()
    with pytest.warns(UserWarning, match=r"1 epochs are done .*set config.num_epochs higher") as caught:
        trainer.train()
    assert caught[0].filename == __file__
    assert "max_epochs" not in str(caught[0].message)
    # A checkpoint loaded into a new Trainer knows its epochs too: train_epoch trains the next one.
    restored = Trainer(ChordRecognitionModel(), train_loader, val_loader, config, ChordRecognitionLoss())
    restored.load_checkpoint(tmp_path / "checkpoints" / "last")
    assert restored.epochs_done == 1
    restored.train_epoch()
    assert restored.epochs_done == 2


def test_a_warmup_longer_than_the_run_rises_as_the_guides_linear_warmup(tmp_path, monkeypatch):
    """The Quick Start's warmup_epochs=5 over a 2-epoch run: torch's LambdaLR with the guide's linear warmup
    gives 2e-5 and 4e-5 at each epoch's last update (2 updates per epoch); the warmup was squeezed into the
    run (5e-5, 1e-4)."""
    monkeypatch.chdir(tmp_path)
    from audiotrain import DataLoader
    from audiotrain.models import ChordRecognitionLoss, ChordRecognitionModel
    from audiotrain.recipes.chords import Trainer, TrainingConfig

    train = DataLoader(SyntheticChordClips(32, seconds=0.25, seed=0), batch_size=16)
    config = TrainingConfig(
        learning_rate=1e-4,
        num_epochs=2,
        warmup_epochs=5,
        scheduler="cosine",
        batch_size=16,
        progress_bar=False,
    )
    history = Trainer(ChordRecognitionModel(), train, None, config, ChordRecognitionLoss()).train()
    assert history["learning_rate"] == pytest.approx([2e-5, 4e-5], rel=1e-5)


def test_the_progress_line_shows_the_accuracies_in_percent_as_the_history(clip_loaders, tmp_path, capsys):
    import re

    from audiotrain.models import ChordRecognitionLoss, ChordRecognitionModel
    from audiotrain.recipes.chords import Trainer, TrainingConfig

    train_loader, val_loader = clip_loaders
    config = TrainingConfig(learning_rate=1e-3, num_epochs=1, batch_size=8, progress_bar=True)
    trainer = Trainer(
        ChordRecognitionModel(), train_loader, val_loader, config, ChordRecognitionLoss(), run_dir=tmp_path
    )
    history = trainer.train()
    out = capsys.readouterr()
    shown = re.findall(r"val_(chord_type|root|bass_note)_acc=([0-9.]+)", out.out + out.err)
    assert {head for head, _ in shown} == {"chord_type", "root", "bass_note"}
    for head, value in shown:
        assert float(value) == pytest.approx(history[f"val_{head}_acc"][-1], rel=1e-3, abs=1e-3)
    assert max(history["val_bass_note_acc"] + history["val_root_acc"]) > 1  # percent, not fractions


def test_targets_outside_the_heads_classes_are_refused_not_read_as_the_last_class(tmp_path):
    """Inside the compiled loss an index of C or more was read as class C-1: root 12 (a 1-based pitch
    class) trained silently as B."""
    from audiotrain.recipes.chords.trainer import ClipFeatureLoader

    audio = np.zeros((2, 22050), np.float32)
    loader = ClipFeatureLoader(
        [(audio, {"chord_type": [1, 1], "root": [12, 0], "bass_note": [0, 0]})], None, 22050, "train_loader"
    )
    with pytest.raises(ValueError, match=r"'root' holds 12, outside 0..11 \(12 classes"):
        loader._split(next(iter(loader.loader)), 0)
    with pytest.raises(ValueError, match="non-integer values"):
        loader._split((audio, {"chord_type": [1, 1], "root": [1.5, 0], "bass_note": [0, 0]}), 0)
    # The bass head has the 12 pitch classes too (not the chord types' 32).
    with pytest.raises(ValueError, match=r"'bass_note' holds 12, outside 0..11 \(12 classes"):
        loader._split((audio, {"chord_type": [1, 1], "root": [0, 0], "bass_note": [12, 0]}), 0)
    # -1 marks a clip a head does not count: kept as it is in every head; -2 is no class.
    _, kept = loader._split((audio, {"chord_type": [-1, 1], "root": [0, -1], "bass_note": [-1, 0]}), 0)
    assert {k: v.tolist() for k, v in kept.items()} == {
        "chord_type": [-1, 1],
        "root": [0, -1],
        "bass": [-1, 0],
    }
    with pytest.raises(ValueError, match=r"'chord_type' holds -2, outside 0..31"):
        loader._split((audio, {"chord_type": [-2, 1], "root": [0, 0], "bass_note": [0, 0]}), 0)


def test_a_ctrl_c_in_train_epoch_is_said_returns_no_epochs_metrics_and_continuing_is_exact(
    clip_datasets, tmp_path, monkeypatch, capsys
):
    import os
    import re
    import signal

    monkeypatch.chdir(tmp_path)
    from audiotrain import DataLoader
    from audiotrain.models import ChordRecognitionLoss, ChordRecognitionModel
    from audiotrain.recipes.chords import Trainer, TrainingConfig

    from mlx.utils import tree_flatten

    clips = list(DataLoader(clip_datasets[0], batch_size=8))
    val = DataLoader(clip_datasets[1], batch_size=8)

    class CtrlCAt:
        """The clips' 3 batches each epoch; Ctrl-C (SIGINT to this process) as batch `at` is taken."""

        def __init__(self, at=None):
            self.at, self.taken = at, 0

        def __len__(self):
            return len(clips)

        def __iter__(self):
            for batch in clips:
                self.taken += 1
                if self.taken == self.at:
                    os.kill(os.getpid(), signal.SIGINT)
                yield batch

    def make(run_dir, at=None):
        mx.random.seed(0)
        config = TrainingConfig(learning_rate=1e-3, num_epochs=3, batch_size=8, progress_bar=False)
        return Trainer(
            ChordRecognitionModel(), CtrlCAt(at), val, config, ChordRecognitionLoss(), run_dir=run_dir
        )

    def weights(trainer):
        return {name: np.array(value) for name, value in tree_flatten(trainer.model.parameters())}

    straight = make("straight")
    expected = [straight.train_epoch() for _ in range(3)]
    assert not straight.interrupted

    stopped = make("stopped", at=5)  # in the second epoch
    assert stopped.train_epoch() == expected[0]
    metrics = stopped.train_epoch()
    # No epoch ended: not the first epoch's numbers again, and the stop is said.
    assert stopped.interrupted and metrics == {} and stopped.epochs_done == 1
    with pytest.raises(KeyError, match="interrupted"):
        metrics["total_loss"]  # a loop that reads it stops here, saying why
    (saved,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Saved ")]
    assert "trainer.train_epoch()" in saved and "trainer.train()" in saved
    (path,) = re.findall(r"trainer\.load_checkpoint\('([^']+)'\)", saved)

    # In a new process: a new Trainer, load_checkpoint(path), and train_epoch() until 3 are done.
    elsewhere = make("stopped")  # (the same run folder, as a new process of the same script)
    elsewhere.load_checkpoint(path)
    while elsewhere.epochs_done < 3:
        elsewhere.train_epoch()
    # In this one: train_epoch() again finishes the stopped epoch, then goes on.
    assert [stopped.train_epoch(), stopped.train_epoch()] == expected[1:]
    assert not stopped.interrupted and stopped.epochs_done == 3
    for continued in (stopped, elsewhere):
        assert continued.history == straight.history
        got, want = weights(continued), weights(straight)
        assert all(np.array_equal(want[name], got[name]) for name in want)


def test_the_training_configs_settings_reach_the_run_the_optimizer_and_the_loss(clip_loaders, tmp_path):
    """Each TrainingConfig field the guide lists does what it says: early stopping's patience and min_delta,
    save_every's epoch=NNN checkpoints, gradient_clip, log_every, seed, progress_bar, compile, AdamW's
    weight_decay and bias_correction, and the default criterion's label smoothing and head weights."""
    from audiotrain.models import ChordModelConfig, ChordRecognitionModel
    from audiotrain.recipes.chords import Trainer, TrainingConfig

    train_loader, val_loader = clip_loaders
    config = TrainingConfig(
        learning_rate=1e-3,
        num_epochs=4,
        batch_size=8,
        progress_bar=False,
        compile=False,
        patience=1,
        min_delta=10.0,  # no epoch improves on the first by that much
        save_every=1,
        gradient_clip=0.25,
        log_every=2,
        seed=7,
        weight_decay=0.03,
        bias_correction=True,
        label_smoothing=0.2,
        loss={"chord_type_weight": 0.9, "root_weight": 0.3, "bass_weight": 0.7, "chord_weight": 0.4},
    )
    model = ChordRecognitionModel(ChordModelConfig(chord_head=True))
    trainer = Trainer(model, train_loader, val_loader, config, run_dir=tmp_path)
    history = trainer.train()
    assert len(history["val_loss"]) == 2  # stopped by patience 1 after the first epoch that missed min_delta
    saved = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert saved == ["best", "epoch=000", "epoch=001", "last"]
    shared = trainer.shared
    assert (shared.gradient_clip_val, shared.log_every_n_steps, shared.seed) == (0.25, 2, 7)
    assert shared.enable_progress_bar is False and shared.compile is False  # (both on by default)
    assert shared.optimizer.weight_decay == 0.03 and shared.optimizer.bias_correction is True
    loss = trainer.module.loss_fn
    assert loss.label_smoothing == 0.2
    assert loss.weights == {"chord_type": 0.9, "root": 0.3, "bass": 0.7, "chord": 0.4}


def test_the_training_seed_orders_the_clips(clip_loaders, tmp_path):
    """config.seed seeds the run (the shuffled order of the clips here): the same seed trains the same
    weights from the same start, another seed other weights."""
    from audiotrain.models import ChordRecognitionModel
    from audiotrain.recipes.chords import Trainer, TrainingConfig

    def weights_after_an_epoch(seed, name):
        mx.random.seed(0)  # the same starting weights
        config = TrainingConfig(learning_rate=1e-3, num_epochs=1, batch_size=8, progress_bar=False, seed=seed)
        trainer = Trainer(ChordRecognitionModel(), *clip_loaders, config, run_dir=tmp_path / name)
        trainer.train()
        return np.array(trainer.model.parameters()["front"]["weight"])

    first = weights_after_an_epoch(1, "a")
    assert np.array_equal(weights_after_an_epoch(1, "b"), first)
    assert not np.allclose(weights_after_an_epoch(2, "c"), first)


def test_balance_classes_without_a_criterion_is_warned_about_as_not_applied(clip_loaders, tmp_path):
    from audiotrain.models import ChordRecognitionModel
    from audiotrain.recipes.chords import Trainer, TrainingConfig

    config = TrainingConfig(batch_size=8, loss={"balance_classes": True})
    with pytest.warns(
        UserWarning, match=r"config.loss.balance_classes is not applied.*class_weights"
    ) as said:
        trainer = Trainer(ChordRecognitionModel(), *clip_loaders, config, run_dir=tmp_path)
    assert said[0].filename == __file__
    assert trainer.module.loss_fn.class_weights is None


def test_clips_reach_the_model_as_the_guides_targets_and_pitch_at_any_sample_rate():
    """The guide's bass_note is the bass head's target (not the root), and a clip at any sample rate is
    resampled to features.sr first: a 440 Hz sine peaks at A4's CQT bin at 44.1 and 22.05 kHz alike."""
    from audiotrain.recipes.chords import TrainingConfig
    from audiotrain.recipes.chords.trainer import ClipFeatureLoader

    features = TrainingConfig().features
    a4_bin = round(features.bins_per_octave * np.log2(440.0 / features.fmin))
    for rate in (44100, 22050):
        sine = np.sin(2 * np.pi * 440.0 * np.arange(rate) / rate).astype(np.float32)[None]
        targets = {"chord_type": [3], "root": [0], "bass_note": [7]}
        (batch,) = ClipFeatureLoader([(sine, targets)], features, rate, "train_loader")
        assert batch["bass"].tolist() == [7] and batch["root"].tolist() == [0]
        spectrum = np.array(batch["features"][0, :, : features.n_bins]).mean(axis=0)
        assert int(np.argmax(spectrum)) == a4_bin, rate


def test_validation_scores_each_clip_by_its_frames_mean_and_averages_over_clips(tmp_path):
    """validate()'s loss is the mean over clips (a batch of 8 and one of 1 weigh 8:1) of the loss of each
    clip's prediction, the mean over time of the model's frame logits."""
    from audiotrain import DataLoader
    from audiotrain.models import ChordRecognitionLoss, ChordRecognitionModel
    from audiotrain.recipes.chords import Trainer, TrainingConfig

    clips = SyntheticChordClips(9, seconds=0.5, seed=1)
    config = TrainingConfig(batch_size=8, progress_bar=False)
    criterion = ChordRecognitionLoss()
    trainer = Trainer(
        ChordRecognitionModel(), [], DataLoader(clips, batch_size=8), config, criterion, run_dir=tmp_path
    )
    metrics = trainer.validate()
    model = trainer.model
    model.eval()
    per_clip = []
    for batch in trainer.val_loader:  # the clips' features
        for i in range(batch["features"].shape[0]):
            logits = {k: mx.mean(v, axis=1) for k, v in model(batch["features"][i : i + 1]).items()}
            targets = {k: batch[k][i : i + 1] for k in ("chord_type", "root", "bass")}
            per_clip.append(criterion(logits, targets)[0].item())
    assert len(per_clip) == 9
    assert metrics["total_loss"] == pytest.approx(np.mean(per_clip), rel=1e-4)


def test_load_checkpoint_restores_the_history_and_export_history_keeps_a_users_file(clip_loaders, tmp_path):
    """The guide's checkpoint "Saves: Training history": a new Trainer's load_checkpoint brings it back
    before any training, so export_history writes it. A file at the path that is no history of this
    Trainer's (a user's JSON, another run's history) is refused, left as it was, and replaced only with overwrite=True."""
    from audiotrain.models import ChordRecognitionModel
    from audiotrain.recipes.chords import Trainer, TrainingConfig

    config = TrainingConfig(learning_rate=1e-3, num_epochs=2, batch_size=8, progress_bar=False)
    trained = Trainer(ChordRecognitionModel(), *clip_loaders, config, run_dir=tmp_path)
    history = trained.train()
    restored = Trainer(ChordRecognitionModel(), *clip_loaders, config, run_dir=tmp_path)
    restored.load_checkpoint(tmp_path / "checkpoints" / "last")
    assert restored.history == history and len(history["val_loss"]) == 2
    users = tmp_path / "history.json"
    # Any JSON; another run's history of other columns; the guide's columns of unequal lengths (no history).
    uneven = json.dumps({key: [1.0] * (i + 1) for i, key in enumerate(history)})
    for text in ('{"x": 1}', '{"loss": [0.5, 0.25]}', uneven):
        users.write_text(text)
        with pytest.raises(FileExistsError, match="history.json"):
            restored.export_history(users)
        assert users.read_text() == text
    restored.export_history(users, overwrite=True)
    assert json.loads(users.read_text()) == history
    restored.export_history(users)  # its own export again: replaced, as a script run twice does


def test_the_guides_onecycle_schedule_peaks_at_the_end_of_the_warmup(tmp_path):
    """TrainingConfig(scheduler="onecycle") trains with 1cycle: up to the learning rate over warmup_epochs
    (here the first epoch's 3 steps), then down to about lr / 25 / 1e4 at the end of the run."""
    from audiotrain import DataLoader
    from audiotrain.models import ChordRecognitionModel
    from audiotrain.recipes.chords import Trainer, TrainingConfig

    loader = DataLoader(SyntheticChordClips(24, seconds=0.5, seed=0), batch_size=8)
    config = TrainingConfig(
        learning_rate=1e-3,
        num_epochs=3,
        batch_size=8,
        scheduler="onecycle",
        warmup_epochs=1,
        progress_bar=False,
    )
    history = Trainer(ChordRecognitionModel(), loader, None, config, run_dir=tmp_path).train()
    first, middle, last = history["learning_rate"]  # each epoch's last step
    assert first == pytest.approx(1e-3, rel=1e-5) and first > middle > last
    assert last == pytest.approx(1e-3 / 25 / 1e4, rel=1e-3)


def test_batches_of_the_wrong_shape_are_named_before_they_reach_the_model():
    """A batch that is not (audio [batch, samples], one target per clip) stops at the loader, named: a third
    item (it was dropped unread), audio with a channel axis or one clip without a batch axis, and more
    targets than clips (each reached MLX as an error of its own or a silent misreading). The loss's own
    name ``bass`` is read where the guide's ``bass_note`` is not given."""
    from audiotrain.recipes.chords.trainer import ClipFeatureLoader

    loader = ClipFeatureLoader([], None, 22050, "train_loader")
    audio = np.zeros((2, 4000), np.float32)
    targets = {"chord_type": [1, 1], "root": [0, 0], "bass_note": [0, 0]}
    for batch in ((audio, targets, "lengths"), (audio,)):
        with pytest.raises(TypeError, match=r"train_loader batches must be \(audio \[batch, samples\]"):
            loader._split(batch, 0)
    for shape in ((2, 1, 4000), (4000,)):
        with pytest.raises(ValueError, match=rf"batch 3 has audio of shape \({shape[0]},"):
            loader._split((np.zeros(shape, np.float32), targets), 3)
    with pytest.raises(ValueError, match="batch 0: 'root' has 3 values for 2 clips"):
        loader._split((audio, {**targets, "root": [0, 0, 1]}), 0)
    _, read = loader._split((audio, {"chord_type": [1, 1], "root": [0, 0], "bass": [3, 4]}), 0)
    assert read["bass"].tolist() == [3, 4]


def test_a_batch_size_other_than_the_loaders_is_warned_about_and_validate_needs_a_val_loader(
    clip_loaders, tmp_path
):
    """config.batch_size does not resize the caller's loaders: a different one is said (the loader's is
    used). validate() without a val_loader says that, not an error from inside the shared Trainer."""
    import warnings

    from audiotrain.models import ChordRecognitionModel
    from audiotrain.recipes.chords import Trainer, TrainingConfig

    train_loader, _ = clip_loaders  # batches of 8
    with pytest.warns(
        UserWarning, match="config.batch_size is 16 but train_loader gives batches of 8"
    ) as said:
        trainer = Trainer(ChordRecognitionModel(), train_loader, None, TrainingConfig(), run_dir=tmp_path)
    assert said[0].filename == __file__
    with pytest.raises(ValueError, match="Trainer.validate: this Trainer has no val_loader"):
        trainer.validate()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Trainer(ChordRecognitionModel(), train_loader, None, TrainingConfig(batch_size=8), run_dir=tmp_path)


def test_processes_which_only_the_command_line_applies_is_warned_about(clip_loaders, tmp_path):
    """config.processes starts processes from the recipe's command line; a Trainer made in Python trains in
    its script's processes, so processes=2 is said with the launch command that does it (0, one per core,
    and 1 are what such a script does anyway: nothing said)."""
    import warnings

    from audiotrain.models import ChordRecognitionModel
    from audiotrain.recipes.chords import Trainer, TrainingConfig

    train_loader, _ = clip_loaders  # batches of 8
    with pytest.warns(
        UserWarning, match=r"config.processes is 2 .*python -m audiotrain launch -n 2 --"
    ) as said:
        Trainer(
            ChordRecognitionModel(), train_loader, None, TrainingConfig(batch_size=8, processes=2), tmp_path
        )
    assert said[0].filename == __file__
    for processes in (0, 1):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            config = TrainingConfig(batch_size=8, processes=processes)
            Trainer(ChordRecognitionModel(), train_loader, None, config, run_dir=tmp_path)


def test_the_constant_schedule_trains_at_the_learning_rate(tmp_path):
    """TrainingConfig(scheduler="constant"), the third schedule the config offers, trains at learning_rate
    from the end of its warmup (warmup_epochs, 1 by default) to the last step."""
    from audiotrain import DataLoader
    from audiotrain.models import ChordRecognitionModel
    from audiotrain.recipes.chords import Trainer, TrainingConfig

    loader = DataLoader(SyntheticChordClips(16, seconds=0.5, seed=0), batch_size=8)
    config = TrainingConfig(
        learning_rate=1e-3, num_epochs=2, batch_size=8, scheduler="constant", progress_bar=False
    )
    history = Trainer(ChordRecognitionModel(), loader, None, config, run_dir=tmp_path).train()
    assert history["learning_rate"] == pytest.approx([1e-3, 1e-3], rel=1e-6)


def test_the_device_setting_reaches_training_and_validation(clip_loaders, tmp_path, monkeypatch):
    """config.device goes to every shared Trainer this Trainer makes, the one train() fits and the one
    validate() evaluates with (on a machine without a GPU "auto" is the CPU too, so the Trainers' own
    resolved device cannot tell a dropped setting: their arguments are what is compared)."""
    from audiotrain.models import ChordRecognitionModel
    from audiotrain.recipes.chords import Trainer, TrainingConfig
    from audiotrain.recipes.chords import trainer as chords_trainer

    asked = []

    class RecordingTrainer(chords_trainer.SharedTrainer):
        def __init__(self, *args, **kwargs):
            asked.append(kwargs.get("accelerator", "auto"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(chords_trainer, "SharedTrainer", RecordingTrainer)
    config = TrainingConfig(num_epochs=1, batch_size=8, progress_bar=False, device="cpu")
    trainer = Trainer(ChordRecognitionModel(), *clip_loaders, config, run_dir=tmp_path)
    trainer.train()
    trainer.validate()
    assert asked == ["cpu", "cpu"]


def test_the_guides_clip_folder_read_by_chord_clip_dataset_trains_at_the_datasets_rate(tmp_path, monkeypatch):
    """The README names `ChordClipDataset(folder)` for the guide's clip folders: a DataLoader over it feeds
    the guide's Trainer as the guide's Quick Start does (its items are dicts, not (audio, targets) pairs; they
    stopped with "batches must be (audio ...); batch 0 is a dict"), the audio read at the dataset's rate
    (recorded in the checkpoint), and a sample_rate that contradicts the dataset is refused."""
    from audiotrain import DataLoader
    from audiotrain.datasets import ChordClipDataset
    from audiotrain.models import ChordRecognitionModel
    from audiotrain.recipes.chords import Trainer, TrainingConfig
    from audiotrain.recipes.chords.task import CHECKPOINT_KEY

    import soundfile as sf

    monkeypatch.chdir(tmp_path)
    clips = tmp_path / "clips"
    clips.mkdir()
    seconds = np.arange(8000) / 16000
    labels = ["C:maj", "G:7", "A:min", "F:maj"]
    for i in range(len(labels)):
        sf.write(clips / f"c{i}.wav", 0.2 * np.sin(2 * np.pi * (220 + 40 * i) * seconds), 16000)
    (clips / "metadata.csv").write_text(
        "file_name,label\n" + "".join(f"c{i}.wav,{x}\n" for i, x in enumerate(labels))
    )
    train_loader = DataLoader(ChordClipDataset(clips), batch_size=2)
    val_loader = DataLoader(ChordClipDataset(clips), batch_size=2)
    config = TrainingConfig(num_epochs=1, progress_bar=False, batch_size=2)

    history = Trainer(ChordRecognitionModel(), train_loader, val_loader, config).train()

    assert len(history["train_loss"]) == 1 and np.isfinite(history["val_loss"][-1])
    state = json.loads((tmp_path / "checkpoints" / "last" / "trainer_state.json").read_text())
    assert state["module_state"][CHECKPOINT_KEY]["clip_sample_rate"] == 22050  # ChordClipDataset's default sr
    with pytest.raises(ValueError, match="sample_rate is 44100 Hz but train_loader reads a ChordClipDataset"):
        Trainer(ChordRecognitionModel(), train_loader, val_loader, config, sample_rate=44100)


def test_integer_audio_is_refused_as_the_feature_functions_refuse_it(tmp_path, monkeypatch):
    """PCM as scipy.io.wavfile.read returns it (int16) trained silently, cast to float 32768 times too
    loud, where `cqt` itself refuses integer samples."""
    monkeypatch.chdir(tmp_path)
    from audiotrain.models import ChordRecognitionModel
    from audiotrain.recipes.chords import Trainer, TrainingConfig

    pcm = (np.random.default_rng(0).standard_normal((2, 22050)) * 3000).astype(np.int16)
    targets = {"chord_type": [2, 3], "root": [0, 1], "bass_note": [0, 1]}
    config = TrainingConfig(num_epochs=1, batch_size=2, progress_bar=False)
    trainer = Trainer(ChordRecognitionModel(), [(pcm, targets)], None, config)
    with pytest.raises(
        TypeError, match=r"train_loader batches .* batch 0 holds integer audio samples \(int16\)"
    ):
        trainer.train()
    assert not (tmp_path / "checkpoints").exists()


def test_a_criterion_that_returns_the_loss_alone_is_named_with_what_it_must_return(tmp_path, monkeypatch):
    """The guide's `criterion` "Loss function" written in torch's style (one loss back) failed inside MLX
    with "iter() 0-dimensional array", naming neither the criterion nor what it must return."""
    import mlx.nn as nn

    monkeypatch.chdir(tmp_path)
    from audiotrain.models import ChordRecognitionModel
    from audiotrain.recipes.chords import Trainer, TrainingConfig

    def criterion(outputs, targets):
        return mx.mean(nn.losses.cross_entropy(outputs["chord_type"], targets["chord_type"]))

    batch = (np.zeros((2, 22050), np.float32), {"chord_type": [2, 3], "root": [0, 1], "bass_note": [0, 1]})
    config = TrainingConfig(num_epochs=1, batch_size=2, progress_bar=False)
    trainer = Trainer(ChordRecognitionModel(), [batch], None, config, criterion)
    with pytest.raises(
        TypeError, match=r"Trainer\(criterion=...\): the criterion must return \(total_loss, "
    ):
        trainer.train()


def test_an_early_stop_is_announced_as_the_command_line_announces_it(clip_loaders, tmp_path, capsys):
    """train() ended before num_epochs without a word where EarlyStopping stopped it; the command line says
    so. Said once: a later train_epoch() that does not stop does not repeat it."""
    from audiotrain.models import ChordRecognitionModel
    from audiotrain.recipes.chords import Trainer, TrainingConfig

    config = TrainingConfig(num_epochs=4, batch_size=8, patience=1, min_delta=100.0, progress_bar=False)
    trainer = Trainer(ChordRecognitionModel(), *clip_loaders, config, run_dir=tmp_path)
    history = trainer.train()
    assert len(history["train_loss"]) == 2
    err = capsys.readouterr().err
    assert (
        "early stopping at epoch 1: val_loss did not improve by more than 100 for 1 epoch (patience 1" in err
    )
    with pytest.warns(UserWarning, match="saved after this run stopped early"):
        trainer.train_epoch()  # (trains nothing: the patience has run out)
    assert "early stopping" not in capsys.readouterr().err


def test_the_guides_best_model_pt_loads_the_runs_best_checkpoint(clip_loaders, tmp_path, monkeypatch, capsys):
    """Seed 002's `trainer.load_checkpoint('checkpoints/best_model.pt')` after a run was refused: the best
    checkpoint is saved as checkpoints/best, and the guide's name for it named no folder."""
    monkeypatch.chdir(tmp_path)
    from audiotrain.models import ChordRecognitionLoss, ChordRecognitionModel
    from audiotrain.recipes.chords import Trainer, TrainingConfig

    train_loader, val_loader = clip_loaders
    config = TrainingConfig(learning_rate=1e-3, num_epochs=2, batch_size=8, progress_bar=False)

    def make():
        return Trainer(ChordRecognitionModel(), train_loader, val_loader, config, ChordRecognitionLoss())

    trained = make()
    trained.train()
    best = make()
    best.load_checkpoint("checkpoints/best")
    # --- seed 002, "load_checkpoint(path: str)" ------------------------------------------------------------
    trainer = make()
    trainer.load_checkpoint("checkpoints/best_model.pt")
    # --- end of seed code -----------------------------------------------------------------------------
    assert trainer.validate() == pytest.approx(best.validate(), rel=1e-6)
    assert "checkpoints/best_model.pt: the guide's name for checkpoints/best" in capsys.readouterr().err
    with pytest.raises(Exception, match="checkpoints/other.pt does not exist"):
        trainer.load_checkpoint("checkpoints/other.pt")


def test_predict_does_not_pitch_shift_by_default_for_a_model_the_clip_trainer_trained(clip_loaders, tmp_path):
    """The clip Trainer never pitch-shifts its clips, so the model knows one key only; predict's default
    test-time shifts (-2..2) averaged in its guesses for audio in other keys: an A:min clip that the model
    (and validation) named A:min came out of `predict` as C:maj/3. Its checkpoints turn them off; asked for,
    they still apply."""
    from audiotrain.models import ChordRecognitionModel
    from audiotrain.models.chord_model import ChordModelConfig
    from audiotrain.recipes.chords import Trainer, TrainingConfig
    from audiotrain.recipes.chords.predict import ChordPredictor

    train_loader, val_loader = clip_loaders
    config = TrainingConfig(num_epochs=1, batch_size=8, progress_bar=False)
    model = ChordRecognitionModel(ChordModelConfig(d_model=32, n_layers=1, n_heads=2))
    Trainer(model, train_loader, val_loader, config, run_dir=tmp_path).train()

    assert ChordPredictor.from_checkpoint(tmp_path).tta_shifts == (0,)
    asked = ChordPredictor.from_checkpoint(tmp_path, tta_shifts=(-1, 0, 1))
    assert asked.tta_shifts == (-1, 0, 1)
