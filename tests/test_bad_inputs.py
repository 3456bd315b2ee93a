"""A catalogue of inputs a user can get wrong, each answered by a message naming the file, line or field.

Every case runs in-process (the CLI's `main(argv)` where there is one) on files made here, and checks two
things: the message names what to fix, and no file in the test's folder changed, appeared or vanished.
"""

from __future__ import annotations

import hashlib
import json
import wave
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import audiotrain  # noqa: F401  (loads the BLAS before mlx)
from audiotrain import audio
from audiotrain.__main__ import main as audiotrain_main
from audiotrain.chords.lab import read_annotation
from audiotrain.features.cache import main as cache_main
from audiotrain.recipes import chords, clap
from audiotrain.recipes.chords.config import TrainingConfig
from audiotrain.recipes.chords.predict import checkpoint_entries
from audiotrain.recipes.chords.task import CHECKPOINT_KEY
from audiotrain.train import checkpoint as ckpt

import numpy as np
import pytest
import soundfile as sf


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _message(run: Callable[[], object], capsys) -> str:
    """The error the user sees: a CLI's stderr (exit status 2), or the exception a library call raises."""
    try:
        code = run()
    except SystemExit as exit_:  # argparse
        code = exit_.code
    except Exception as error:  # a library function: its exception is the message
        return f"{type(error).__name__}: {error}"
    if hasattr(code, "report"):  # a scan that skips what it cannot use: its report names each skip
        return code.report()
    err = capsys.readouterr().err
    assert code not in (0, None), f"accepted: {err}"
    return err


# --------------------------------------------------------------------------------------------- builders
def _wav(path: Path, samples, sr: int = 8000, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.asarray(samples, dtype=np.float32), sr, subtype=subtype)
    return path


def _one_hertz_wav(path: Path) -> Path:
    """The issue's 12-sample file at 1 Hz (soundfile writes any rate; wave too)."""
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(1)
        handle.writeframes(np.zeros(12, np.int16).tobytes())
    return path


def _chord_checkpoint(folder: Path, **feature_changes) -> Path:
    """A checkpoint folder with the chord recipe's settings (weights are not reached by these cases)."""
    config = TrainingConfig()
    features = {**asdict(config.features), **feature_changes}
    entries = checkpoint_entries(config.features, config.decode, 96)
    entries["features"] = features
    entries["model_config"] = asdict(config.model)
    state = {
        "progress": {
            "epoch": 1,
            "batch_in_epoch": 0,
            "global_step": 3,
            "total_batches": 3,
            "micro_batches": 0,
        },
        "random": {"mlx": [0, 1]},
        "module_state": {CHECKPOINT_KEY: entries},
    }
    folder.mkdir(parents=True)
    for name in (ckpt.MODEL_FILE, ckpt.OPTIMIZER_FILE):
        (folder / name).write_bytes(b"")
    (folder / ckpt.STATE_FILE).write_text(
        json.dumps({"format": ckpt.FORMAT, "format_version": ckpt.FORMAT_VERSION, **state})
    )
    return folder


def _edit_state(folder: Path, **changes) -> Path:
    state = json.loads((folder / ckpt.STATE_FILE).read_text())
    state.update(changes)
    (folder / ckpt.STATE_FILE).write_text(json.dumps(state))
    return folder


def _finished_run(folder: Path) -> Path:
    (folder / "checkpoints" / "last").mkdir(parents=True)
    (folder / "checkpoints" / "last" / "trainer_state.json").write_text("{}")
    (folder / "config.json").write_text('{"config": {}}')
    (folder / "history.json").write_text("{}")
    return folder


def _songs(folder: Path, names: str = "abcd") -> Path:
    """One-second songs: 10 frames at the chord recipe's 10.8 frames per second."""
    for name in names:
        _wav(folder / f"{name}.wav", np.zeros(8000))
        (folder / f"{name}.lab").write_text("0.0\t0.8\tC:maj\n")
    return folder


# ----------------------------------------------------------------------------------------------- cases
# name -> (build the inputs in tmp and return what runs, fragments the message must hold; "{tmp}" is tmp_path)
def chords_flag(*argv):
    return lambda tmp: lambda: chords.main([*argv, "--run_dir", str(tmp / "run")])


def clap_flag(*argv):
    return lambda tmp: lambda: clap.main([*argv, "--out", str(tmp / "run")])


def config_file(text: bytes | str, suffix: str = ".yaml"):
    def build(tmp):
        path = tmp / f"settings{suffix}"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return lambda: chords.main(["--config", str(path), "--run_dir", str(tmp / "run")])

    return build


def prepared(make: Callable[[Path], object], call: Callable[[Path, object], object]):
    """A case whose files `make(tmp)` writes now, before the snapshot; `call(tmp, made)` is what runs."""
    return lambda tmp: (lambda made: lambda: call(tmp, made))(make(tmp))


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _two_files(tmp: Path) -> Path:
    _wav(tmp / "in" / "song.wav", np.zeros(800))
    return _write(tmp / "in-chords" / "song.lab", "edited by hand\n")


def _scan_captions(folder: Path):
    from audiotrain.datasets.captions import scan_caption_folder

    return scan_caption_folder(folder, sampling_rate=16000)


def _clap_folder_with_index(tmp: Path, shard: str) -> Path:
    import shutil

    folder = tmp / "clapckpt"
    shutil.copytree(Path(__file__).parent / "fixtures" / "clap_tiny", folder)
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": shard}}))
    (tmp / "d").mkdir()
    return folder


def _run_clap(tmp: Path, folder: Path):
    return clap.main(["--pretrained", str(folder), "--data", str(tmp / "d"), "--out", str(tmp / "run")])


CASES: dict[str, tuple[Callable, tuple[str, ...]]] = {
    # ---- flags
    "seed -1": (chords_flag("--seed", "-1"), ("--seed", "-1")),
    "learning_rate inf": (chords_flag("--learning_rate", "inf"), ("--learning_rate", "inf")),
    "learning_rate nan": (chords_flag("--learning_rate", "nan"), ("--learning_rate", "nan")),
    "learning_rate 0": (chords_flag("--learning_rate", "0"), ("--learning_rate",)),
    "batch_size 0": (chords_flag("--batch_size", "0"), ("--batch_size", "0")),
    "num_epochs -3": (chords_flag("--num_epochs", "-3"), ("--num_epochs", "-3")),
    "weight_decay inf": (chords_flag("--weight_decay", "inf"), ("--weight_decay", "inf")),
    "gradient_clip -1": (chords_flag("--gradient_clip", "-1"), ("--gradient_clip",)),
    "log_every 0": (chords_flag("--log_every", "0"), ("--log_every",)),
    "warmup_epochs -1": (chords_flag("--warmup_epochs=-1"), ("--warmup_epochs", ">= 0", "-1")),
    "label_smoothing 1.5": (chords_flag("--label_smoothing", "1.5"), ("label_smoothing", "1.5")),
    "hop_length 1e9": (chords_flag("--features.hop_length", "1000000000"), ("--features.hop_length",)),
    "sr 10": (chords_flag("--features.sr", "10"), ("--features.sr", "10")),
    "window_frames 4": (chords_flag("--data.window_frames", "4"), ("--data.window_frames", "4")),
    "scheduler unknown": (chords_flag("--scheduler", "linear"), ("--scheduler", "linear")),
    "seed not a number": (chords_flag("--seed", "abc"), ("--seed", "abc")),
    "abbreviated flag": (chords_flag("--num_epoch", "3"), ("--num_epoch",)),
    "unknown command": (lambda tmp: lambda: chords.main(["fit"]), ("unknown command 'fit'",)),
    "clap learning_rate inf": (clap_flag("--task.learning_rate", "inf"), ("--task.learning_rate", "inf", "finite")),
    "clap learning_rate nan": (clap_flag("--task.learning_rate", "nan"), ("--task.learning_rate", "nan")),
    "clap min_learning_rate -1": (clap_flag("--task.min_learning_rate", "-1"), ("--task.min_learning_rate", "-1", ">= 0")),
    "clap weight_decay nan": (clap_flag("--task.weight_decay", "nan"), ("--task.weight_decay", "nan")),
    "clap warmup_steps -1": (clap_flag("--task.warmup_steps", "-1"), ("--task.warmup_steps", "-1", ">= 0")),
    "clap total_steps 0": (clap_flag("--task.total_steps", "0"), ("--task.total_steps", "0", ">= 1")),
    "clap batch_size 1": (clap_flag("--train.batch_size", "1"), ("--train.batch_size", "1", ">= 2")),
    "clap eval_batch_size 0": (clap_flag("--train.eval_batch_size", "0"), ("--train.eval_batch_size", "0", ">= 2")),
    "clap epochs 0": (clap_flag("--train.epochs", "0"), ("--train.epochs", "0", ">= 1")),
    "clap max_steps -5": (clap_flag("--train.max_steps", "-5"), ("--train.max_steps", "-5", ">= 1")),
    "clap gradient_clip inf": (clap_flag("--train.gradient_clip", "inf"), ("--train.gradient_clip", "inf", "finite")),
    "clap accumulate_grad_batches 0": (clap_flag("--train.accumulate_grad_batches", "0"), ("--train.accumulate_grad_batches", "0")),
    "clap log_every_n_steps 0": (clap_flag("--train.log_every_n_steps", "0"), ("--train.log_every_n_steps", "0")),
    "clap seed -1": (clap_flag("--train.seed", "-1"), ("--train.seed", "-1", ">= 0")),
    "clap seed 2**64": (clap_flag("--train.seed", str(2**64)), ("--train.seed", str(2**64), "2**63 - 1")),
    "clap precision 16": (clap_flag("--train.precision", "16"), ("--train.precision", "'16'", "bf16-mixed")),
    "clap max_tokens 2": (clap_flag("--dataset.max_tokens", "2"), ("--dataset.max_tokens", "2", ">= 3")),
    "clap eval_fraction 1": (clap_flag("--dataset.eval_fraction", "1"), ("--dataset.eval_fraction", "1.0", "< 1")),
    "clap eval_fraction 0": (clap_flag("--dataset.eval_fraction", "0"), ("--dataset.eval_fraction", "0.0", "> 0")),
    # The "after" scores would be measured on the training clips, or on those that chose the checkpoint.
    "clap test_split train": (clap_flag("--dataset.test_split", "train"), ("--dataset.test_split", "other than train_split", "'train'")),
    "clap test_split Train": (clap_flag("--dataset.test_split", "Train"), ("--dataset.test_split", "other than train_split", "'Train'")),
    "clap test_split alias of eval_split": (clap_flag("--dataset.eval_split", "test", "--dataset.test_split", "evaluation"), ("--dataset.test_split", "other than train_split and eval_split", "'evaluation'")),
    "clap num_workers -1": (clap_flag("--dataset.num_workers", "-1"), ("--dataset.num_workers", "-1")),
    "clap demo clips 1": (clap_flag("--demo.clips", "1"), ("--demo.clips", "1", ">= 2")),
    "clap demo width 6": (clap_flag("--demo.width", "6"), ("--demo.width", "6", "multiple of 4")),
    "clap demo width 0": (clap_flag("--demo.width", "0"), ("--demo.width", "got 0", ">= 4")),  # (else a ZeroDivisionError)
    "clap gradient_clip 0": (clap_flag("--train.gradient_clip", "0"), ("--train.gradient_clip", "0.0", "> 0")),  # (0: no clipping)
    "clap demo vocab_size 0": (clap_flag("--demo.vocab_size", "0"), ("--demo.vocab_size", "0")),
    "demo_seed -1": (chords_flag("--data.demo_seed=-1"), ("data.demo_seed (--data.demo_seed)", "-1")),
    # Every head's loss weighed 0: a loss of 0 whose run trained nothing, with a checkpoint and scores to show.
    "loss weights all 0": (chords_flag("--loss.chord_type_weight", "0", "--loss.root_weight", "0", "--loss.bass_weight", "0", "--loss.chord_weight", "0"), ("--loss.chord_type_weight", "--loss.chord_weight", "nothing trains")),
    "loss weights 0 but a chord head the model lacks": (chords_flag("--loss.chord_type_weight", "0", "--loss.root_weight", "0", "--loss.bass_weight", "0", "--model.chord_head", "false"), ("--loss.bass_weight", "model.chord_head is false", "nothing trains")),
    "loss weights all 0 in a config file": (config_file("loss:\n  chord_type_weight: 0\n  root_weight: 0\n  bass_weight: 0\n  chord_weight: 0\n"), ("settings.yaml", "loss.root_weight", "nothing trains")),
    "demo_seconds 2": (chords_flag("--data.demo_seconds", "2"), ("data.demo_seconds (--data.demo_seconds)", ">= 4")),
    "demo_seconds 1e9": (chords_flag("--data.demo_seconds", "1e9"), ("--data.demo_seconds", "<= 600")),
    "hop_length 7": (chords_flag("--features.hop_length", "7"), ("--features.hop_length", "a multiple of 64", "use 64")),
    "hop_length 2000": (chords_flag("--features.hop_length", "2000"), ("--features.hop_length", "use 1984 or 2048")),
    "hop_length 30000": (chords_flag("--features.hop_length", "30000"), ("--features.hop_length", "at most sr = 22050", "30000")),
    "hop_length 0": (chords_flag("--features.hop_length", "0"), ("--features.hop_length", ">= 1", "got 0")),
    # The spare bins past Nyquist: named as the flag the user changed, not "fewer bins, a lower fmin or a higher sr".
    # The model's own bins past Nyquist: named as flags, the one set among them (216 bins at 12 a octave span 18
    # octaves: the CQT's own "fewer bins, a lower fmin or a higher sr" never named bins_per_octave).
    "bins_per_octave 12 past Nyquist": (chords_flag("--features.bins_per_octave", "12", "--features.tuning_correction", "false"), ("--features.n_bins)", "more bins_per_octave", "you set --features.bins_per_octave 12", "features.n_bins is 216, the default")),
    "fmin 5000 past Nyquist": (chords_flag("--features.fmin", "5000"), ("(--features.fmin)", "you set --features.fmin 5000", "Nyquist")),
    # A preset's d_model against the heads the user asked for: the flag given is named, and where d_model is from.
    "n_heads 3 under quick_test": (chords_flag("--preset", "quick_test", "--model.n_heads", "3"), ("divisible by n_heads = 3", "you set --model.n_heads 3", "model.d_model is 32")),
    "max_pitch_shift 40": (chords_flag("--features.max_pitch_shift", "40"), ("--features.max_pitch_shift", "at most 28", "got 40")),
    "max_pitch_shift 1e9": (chords_flag("--features.max_pitch_shift", "1000000000"), ("--features.max_pitch_shift", "at most 28")),
    "bins_per_octave 0": (chords_flag("--features.bins_per_octave", "0"), ("--features.bins_per_octave", "multiple of 12", "got 0")),
    # Each of these the CQT would take, or refuse naming CQTConfig rather than the flag; some learn nothing.
    "n_bins 0": (chords_flag("--features.n_bins", "0", "--features.bass_view_bins", "0"), ("--features.n_bins", "from 1 to 4096", "got 0")),
    # Filters reaching 5.8e35 Hz: once written with every one of their 36 digits.
    "n_bins 4096": (
        chords_flag("--features.n_bins", "4096"),
        ("--features.n_bins", "CQT filters reach 5.8e35 Hz (top bin 5.7e35 Hz)"),
    ),
    "sr 999": (chords_flag("--features.sr", "999"), ("--features.sr", "1000 to 384000 Hz", "999")),
    "log_gain 0": (chords_flag("--features.log_gain", "0"), ("--features.log_gain", "> 0", "got 0")),  # (every feature 0)
    "bins_per_octave 42": (chords_flag("--features.bins_per_octave", "42"), ("--features.bins_per_octave", "multiple of 12", "got 42")),
    # At 2 bins a semitone the tuning estimate reads nothing: the correction would silently do nothing.
    "tuning_correction at 24 bins per octave": (chords_flag("--features.bins_per_octave", "24", "--features.n_bins", "144", "--features.bass_view_bins", "72"), ("--features.tuning_correction", "at least 36", "got 24")),
    "bass_view_filter_scale 0.01": (chords_flag("--features.bass_view_filter_scale", "0.01"), ("--features.bass_view_filter_scale", "from 0.05 to 1", "0.01")),
    "max_pitch_shift -1": (chords_flag("--features.max_pitch_shift=-1"), ("--features.max_pitch_shift", ">= 0", "got -1")),
    "demo_songs 1": (chords_flag("--data.demo_songs", "1"), ("--data.demo_songs", ">= 2", "a training and a validation song", "got 1")),
    "eq_db 100": (chords_flag("--data.eq_db", "100"), ("--data.eq_db", "from 0 to 40 dB", "100")),
    "jams_annotation -1": (chords_flag("--data.jams_annotation=-1"), ("--data.jams_annotation", ">= 0", "-1")),  # (else the last one)
    "group_pattern with split_by folder": (chords_flag("--data.split_by", "folder", "--data.group_pattern", "x"), ("--data.group_pattern", "in place of data.split_by", "pass one of them")),
    "demo style named twice": (chords_flag("--data.demo_styles", "train,train:2"), ("--data.demo_styles", "names 'train' twice")),
    "demo style weight 0": (chords_flag("--data.demo_styles", "train,studio:0"), ("--data.demo_styles", "'studio:0'", "> 0")),
    "decode.self_transition 1": (chords_flag("--decode.self_transition", "1"), ("decode.self_transition (--decode.self_transition)",)),
    "model.d_model 100000": (chords_flag("--model.d_model", "100000"), ("model.d_model (--model.d_model) must be at most 8192", "got 100000")),
    "model.n_layers 64, too big for memory": (chords_flag("--model.n_layers", "64", "--model.d_model", "8192", "--model.ff_dim", "32768"), ("--model.d_model 8192", "GB", "smaller model")),
    "clap max_tokens 20000": (clap_flag("--dataset.max_tokens", "20000"), ("--dataset.max_tokens 20000", "at most 512")),
    "clap demo width 100000": (clap_flag("--demo.width", "100000"), ("--demo.width)", "<= 4096", "got 100000")),
    "clap cv folds 0": (lambda tmp: lambda: clap.main(["cv", "--preset", "quick_test", "--demo.folder", str(tmp / "demo"), "--folds", "0"]), ("--folds >= 2", "0")),
    # (at parsing, before the demo clips are generated: the message is the parser's, not grouped_folds')
    "clap cv folds 1": (lambda tmp: lambda: clap.main(["cv", "--preset", "quick_test", "--demo.folder", str(tmp / "demo"), "--folds", "1"]), ("cross-validation needs --folds >= 2, got 1",)),
    "clap cv processes -1": (lambda tmp: lambda: clap.main(["cv", "--preset", "quick_test", "--demo.folder", str(tmp / "demo"), "--train.processes", "-1"]), ("--train.processes", "-1", ">= 0")),
    "misspelt command": (lambda tmp: lambda: chords.main(["trian"]), ("unknown command 'trian'", "did you mean 'train'?")),
    "clap misspelt command": (lambda tmp: lambda: clap.main(["exprot", "--out", "x"]), ("unknown command 'exprot'", "'export'")),
    "cache --root missing": (lambda tmp: lambda: cache_main(["clear", "--root", str(tmp / "nope")]), ("--root", "nope does not exist", "nothing was deleted")),
    "cache --root a file": (
        prepared(lambda tmp: _write(tmp / "afile", "mine"), lambda tmp, f: cache_main(["info", "--root", str(f)])),
        ("--root", "afile is a file"),
    ),
    "cache --key unknown": (lambda tmp: lambda: cache_main(["clear", "--key", "nope"]), ("no configuration 'nope'",)),
    "cache abbreviated flag": (lambda tmp: lambda: cache_main(["info", "--ro", str(tmp)]), ("unrecognized arguments: --ro",)),
    "info abbreviated flag": (lambda tmp: lambda: audiotrain_main(["info", "--bench"]), ("unrecognized arguments: --bench",)),
    # ---- config files
    "config not UTF-8": (config_file(b"seed: 1\n\xff\xfe\n"), ("settings.yaml", "UTF-8")),
    "config YAML syntax": (config_file("seed: [1,\n"), ("settings.yaml", "YAML")),
    # A trailing comma is reported at the brace (line 2) before Python 3.13, at the comma (line 1) from 3.13 on.
    "config JSON syntax": (config_file('{"seed": 1,\n}', ".json"), ("settings.json", "not valid JSON at line")),
    "config JSON missing comma": (
        config_file('{"seed": 1\n "learning_rate": 0.1}', ".json"),
        ("settings.json", "not valid JSON at line 2", "Expecting ',' delimiter"),
    ),
    "config unknown field": (config_file("sead: 1\n"), ("settings.yaml", "sead")),
    "config wrong type": (config_file("learning_rate: fast\n"), ("settings.yaml", "learning_rate")),
    "config out of range": (config_file("seed: -5\n"), ("settings.yaml", "seed", "-5")),
    "config nested wrong": (config_file("data: 3\n"), ("settings.yaml", "data")),
    # (The flags' fixed values are argparse's choices; a file's are checked by the config.)
    "config split_by unknown": (config_file("data:\n  split_by: album\n"), ("settings.yaml", "data.split_by", "song, folder, top_folder", "'album'")),
    "config scheduler unknown": (config_file("scheduler: linear\n"), ("settings.yaml", "scheduler", "'linear'")),
    "clap config out of range": (
        prepared(
            lambda tmp: _write(tmp / "clap.yaml", "train:\n  batch_size: 1\n"),
            lambda tmp, f: clap.main(["--config", str(f), "--out", str(tmp / "run")]),
        ),
        ("clap.yaml", "train.batch_size", "1"),
    ),
    "config key not a name": (config_file("1: 2\n"), ("settings.yaml", "unknown field 1 at the top level")),
    "config derived field": (config_file("model:\n  num_chord_types: 3\n"), ("settings.yaml", "model.num_chord_types is 3", "remove")),
    "config of the other recipe": (
        config_file(json.dumps({"config": {"data": None, "dataset": {}}, "versions": {}, "command": ["-m", "audiotrain.recipes.clap"]}), ".json"),
        ("settings.json is the record of a run of the clap recipe",),
    ),
    "config missing": (
        lambda tmp: lambda: chords.main(["--config", str(tmp / "nothere.yaml")]),
        ("nothere.yaml", "does not exist"),
    ),
    # ---- run folders and outputs
    "run_dir of a finished run": (
        prepared(
            lambda tmp: (_songs(tmp / "songs"), _finished_run(tmp / "old")),
            lambda tmp, made: chords.main(["train", "--data", str(made[0]), "--run_dir", str(made[1])]),
        ),
        ("--run_dir", "{tmp}/old", "--overwrite", "--resume"),
    ),
    "window_frames longer than every song": (
        prepared(_songs, lambda tmp, songs: chords.main(["train", "--data", str(songs), "--data.window_frames", "4000", "--run_dir", str(tmp / "run")])),
        ("--data.window_frames 4000", "longer than every training song", "has 10 frames", "--data.window_frames 10 or less"),
    ),
    "run_dir is a file": (
        prepared(lambda tmp: _write(tmp / "afile", "mine"), lambda tmp, f: chords.main(["--run_dir", str(f)])),
        ("--run_dir", "afile", "is a file"),
    ),
    "checkpoint_dir of another run": (
        prepared(
            lambda tmp: _finished_run(tmp / "other") / "checkpoints",
            lambda tmp, ck: chords.main(["--checkpoint_dir", str(ck), "--run_dir", str(tmp / "new")]),
        ),
        ("--checkpoint_dir", "{tmp}/other/checkpoints", "another run"),
    ),
    # --resume beside --overwrite: the train and demo commands and CLAP let the resume win without a word
    "chords --resume with --overwrite": (
        prepared(
            lambda tmp: _finished_run(tmp / "old"),
            lambda tmp, run: chords.main(["--run_dir", str(run), "--resume", str(run / "checkpoints" / "last"), "--overwrite"]),
        ),
        ("--resume continues the run in its folder and --overwrite replaces it; give one",),
    ),
    "chords train --resume with --overwrite true": (
        prepared(
            lambda tmp: (_songs(tmp / "songs"), _finished_run(tmp / "old")),
            lambda tmp, made: chords.main(["train", "--data", str(made[0]), "--run_dir", str(made[1]), "--resume", str(made[1] / "checkpoints" / "last"), "--overwrite", "true"]),
        ),
        ("--resume continues the run in its folder and --overwrite replaces it; give one",),
    ),
    "chords cv --resume with --overwrite": (
        prepared(
            lambda tmp: _finished_run(tmp / "old"),
            lambda tmp, run: chords.main(["cv", "--resume", str(run), "--overwrite"]),
        ),
        ("--resume continues the cv run in its folder and --overwrite replaces it; give one",),
    ),
    "clap --resume with --overwrite": (
        prepared(
            lambda tmp: _finished_run(tmp / "clap_run"),
            lambda tmp, out: clap.main(["--out", str(out), "--resume", str(out / "checkpoints" / "last"), "--overwrite"]),
        ),
        ("--resume continues the run in its folder and --overwrite replaces it; give one",),
    ),
    "clap --out of a previous run": (
        prepared(lambda tmp: _finished_run(tmp / "clap_run"), lambda tmp, out: clap.main(["--out", str(out)])),
        ("--out", "clap_run", "--overwrite"),
    ),
    "predict -o an earlier .lab": (
        prepared(
            lambda tmp: (_wav(tmp / "in" / "song.wav", np.zeros(800)), _write(tmp / "song.lab", "0 1 N\n")),
            lambda tmp, made: chords.main(["predict", "--checkpoint", str(tmp), str(made[0]), "-o", str(made[1])]),
        ),
        ("song.lab", "--overwrite"),
    ),
    "predict DIR into DIR-chords with earlier outputs": (
        prepared(_two_files, lambda tmp, _: chords.main(["predict", "--checkpoint", str(tmp), str(tmp / "in")])),
        ("in-chords/song.lab", "--overwrite"),
    ),
    # ---- checkpoints
    "resume folder missing": (chords_flag("--resume", "/nonexistent/last"), ("/nonexistent/last", "does not exist")),
    "resume a run folder": (
        prepared(lambda tmp: _finished_run(tmp / "old"), lambda tmp, run: chords.main(["--resume", str(run)])),
        ("{tmp}/old is not a complete audiotrain checkpoint", "a run folder? its checkpoints", "{tmp}/old/checkpoints/last"),
    ),
    "cv resume missing": (
        lambda tmp: lambda: chords.main(["cv", "--resume", str(tmp / "nope")]),
        ("--resume {tmp}/nope does not exist", "pass --run_dir instead"),
    ),
    "cv resume a file": (
        prepared(lambda tmp: _write(tmp / "afile", "mine"), lambda tmp, f: chords.main(["cv", "--resume", str(f)])),
        ("--resume {tmp}/afile is a file",),
    ),
    "resume not a checkpoint": (
        prepared(lambda tmp: (tmp / "empty").mkdir(), lambda tmp, _: chords.main(["--resume", str(tmp / "empty")])),
        ("empty", "not a complete audiotrain checkpoint"),
    ),
    "checkpoint state not JSON": (
        prepared(
            lambda tmp: _write(_chord_checkpoint(tmp / "ck") / ckpt.STATE_FILE, "{oops"),
            lambda tmp, _: chords.main(["--resume", str(tmp / "ck")]),
        ),
        ("ck/trainer_state.json", "not valid JSON"),
    ),
    "checkpoint global_step -1": (
        prepared(
            lambda tmp: _edit_state(_chord_checkpoint(tmp / "ck"), progress={"epoch": 1, "batch_in_epoch": 0, "global_step": -1}),
            lambda tmp, ck: chords.main(["--resume", str(ck)]),
        ),
        ("ck/trainer_state.json", "global_step", "-1"),
    ),
    "checkpoint rng wrong": (
        prepared(
            lambda tmp: _edit_state(_chord_checkpoint(tmp / "ck"), random={"mlx": "seed"}),
            lambda tmp, ck: chords.main(["--resume", str(ck)]),
        ),
        ("ck/trainer_state.json", "random.mlx"),
    ),
    "checkpoint from another program": (
        prepared(
            lambda tmp: _edit_state(_chord_checkpoint(tmp / "ck"), format="lightning"),
            lambda tmp, ck: chords.main(["--resume", str(ck)]),
        ),
        ("ck/trainer_state.json", "not written by audiotrain"),
    ),
    "checkpoint hop_length 1e9": (
        prepared(
            lambda tmp: (_chord_checkpoint(tmp / "ck", hop_length=10**9), _wav(tmp / "x.wav", np.zeros(8000))),
            lambda tmp, made: chords.main(["predict", "--checkpoint", str(made[0]), str(made[1])]),
        ),
        ("ck/trainer_state.json", "hop_length", "1000000000"),
    ),
    "checkpoint sr 1": (
        prepared(
            lambda tmp: (_chord_checkpoint(tmp / "ck", sr=1), _wav(tmp / "x.wav", np.zeros(8000))),
            lambda tmp, made: chords.main(["predict", "--checkpoint", str(made[0]), str(made[1])]),
        ),
        ("ck/trainer_state.json", "features.sr"),
    ),
    "checkpoint missing files": (
        prepared(
            lambda tmp: (_chord_checkpoint(tmp / "ck") / ckpt.OPTIMIZER_FILE).unlink(),
            lambda tmp, _: chords.main(["--resume", str(tmp / "ck")]),
        ),
        ("ck", "missing optimizer.safetensors"),
    ),
    # ---- audio
    "audio at 1 Hz": (
        prepared(lambda tmp: _one_hertz_wav(tmp / "one.wav"), lambda tmp, f: audio.load(f)),
        ("one.wav", "1 Hz"),
    ),
    "audio empty file": (
        prepared(lambda tmp: _write(tmp / "e.wav", ""), lambda tmp, f: audio.load(f)),
        ("e.wav", "empty"),
    ),
    "audio not audio": (
        prepared(lambda tmp: _write(tmp / "t.wav", "hello " * 100), lambda tmp, f: audio.load(f)),
        ("t.wav",),
    ),
    "audio NaN samples": (
        prepared(lambda tmp: _wav(tmp / "n.wav", [0.1, np.nan] * 400, subtype="FLOAT"), lambda tmp, f: audio.load(f)),
        ("n.wav", "NaN"),
    ),
    "audio missing": (prepared(lambda tmp: None, lambda tmp, _: audio.load(tmp / "gone.wav")), ("gone.wav", "does not exist")),
    # ---- annotations
    "lab unknown chord": (
        prepared(lambda tmp: _write(tmp / "a.lab", "0.0 1.0 C:maj\n1.0 2.0 H:maj\n"), lambda tmp, f: read_annotation(f)),
        ("a.lab", "line 2", "H:maj"),
    ),
    "lab end before start": (
        prepared(lambda tmp: _write(tmp / "b.lab", "0.0 1.0 C:maj\n2.0 1.5 G:maj\n"), lambda tmp, f: read_annotation(f)),
        ("b.lab", "line 2"),
    ),
    "lab not a number": (
        prepared(lambda tmp: _write(tmp / "c.lab", "zero one C:maj\n"), lambda tmp, f: read_annotation(f)),
        ("c.lab", "line 1"),
    ),
    # ---- caption folders (a broken line is a counted skip: the report names it)
    "captions metadata without a caption column": (
        prepared(
            lambda tmp: (_wav(tmp / "caps" / "a.wav", np.zeros(800)), _write(tmp / "caps" / "metadata.csv", "file_name,words\na.wav,a dog\n")),
            lambda tmp, _: _scan_captions(tmp / "caps"),
        ),
        ("metadata.csv", "caption"),
    ),
    "captions metadata.jsonl broken line": (
        prepared(
            lambda tmp: (_wav(tmp / "caps" / "a.wav", np.zeros(800)), _write(tmp / "caps" / "metadata.jsonl", '{"file_name": "a.wav", "caption": "x"}\n{oops\n')),
            lambda tmp, _: _scan_captions(tmp / "caps"),
        ),
        ("metadata.jsonl:2", "not valid JSON"),
    ),
    "captions path outside the folder": (
        prepared(
            lambda tmp: (_wav(tmp / "caps" / "a.wav", np.zeros(800)), _wav(tmp / "secret.wav", np.zeros(800)), _write(tmp / "caps" / "metadata.jsonl", '{"file_name": "a.wav", "caption": "x"}\n{"file_name": "../secret.wav", "caption": "y"}\n')),
            lambda tmp, _: _scan_captions(tmp / "caps"),
        ),
        ("metadata.jsonl:2", "../secret.wav", "escapes the data folder"),
    ),
    # ---- CLAP checkpoints
    "clap pretrained folder missing": (
        prepared(lambda tmp: (tmp / "d").mkdir(), lambda tmp, _: clap.main(["--pretrained", str(tmp / "nope"), "--data", str(tmp / "d")])),
        ("nope",),
    ),
    "clap index outside the folder": (
        prepared(lambda tmp: _clap_folder_with_index(tmp, "../../secret.safetensors"), _run_clap),
        ("model.safetensors.index.json", "../../secret.safetensors"),
    ),
    "clap index absolute path": (
        prepared(lambda tmp: _clap_folder_with_index(tmp, "/etc/passwd"), _run_clap),
        ("model.safetensors.index.json", "/etc/passwd"),
    ),
}  # fmt: skip


def test_the_catalogue_has_at_least_40_cases():
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_named_and_nothing_changes(name, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # default outputs (runs/, ./logs) would land here, and be seen
    monkeypatch.setenv("AUDIOTRAIN_CACHE_DIR", str(tmp_path / "cache"))
    build, fragments = CASES[name]
    run = build(tmp_path)
    assert callable(run), name
    capsys.readouterr()
    before = _snapshot(tmp_path)
    message = _message(run, capsys)
    assert "Traceback" not in message, message
    for fragment in fragments:
        assert fragment.format(tmp=tmp_path) in message, f"{name}: {fragment!r} not in {message!r}"
    assert _snapshot(tmp_path) == before, f"{name}: files changed"
