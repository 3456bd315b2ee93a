"""Cross-validation of the CLAP recipe, grouped by clip: `python -m audiotrain.recipes.clap cv`."""

import contextlib
import io
import json
import re
import shutil
from pathlib import Path

from audiotrain.datasets.captions import CaptionedClip
from audiotrain.recipes.clap import main
from audiotrain.recipes.clap.cv import clip_folds

import numpy as np
import pytest
from unrendered_plots import plots_unrendered


def _cv_run(argv):
    """(exit status, stdout, stderr) of `main(argv)`, for a module fixture (capsys is a test's own)."""
    printed, said = io.StringIO(), io.StringIO()
    with plots_unrendered(), contextlib.redirect_stdout(printed), contextlib.redirect_stderr(said):
        status = main(argv)
    return status, printed.getvalue(), said.getvalue()


@pytest.fixture(scope="module")
def demo_cv(tmp_path_factory):
    """One 2-fold cv of the quick_test demo, shared by the tests that read its folder and what it printed:
    (the argv without --out, its folder, exit status, stdout, stderr)."""
    tmp = tmp_path_factory.mktemp("demo_cv")
    argv = ["cv", "--folds", "2", "--preset", "quick_test", "--demo.folder", str(tmp / "cache")]
    return argv, tmp / "cv", *_cv_run([*argv, "--out", str(tmp / "cv")])


def test_folds_keep_every_caption_of_a_clip_together():
    rng = np.random.default_rng(0)
    clips = [
        CaptionedClip(
            Path(f"/d/c{i}.wav"), f"c{i}.wav", tuple(f"cap {i}.{j}" for j in range(rng.integers(1, 6)))
        )
        for i in range(17)
    ]
    folds = clip_folds(clips, 4, seed=3, val_fraction=0.2, source="d")
    names = sorted(c.name for c in clips)
    assert sorted(n for f in folds for n in f.test) == names  # each clip held out by exactly one fold
    for f in folds:
        assert sorted(f.train + f.val + f.test) == names and f.val and f.train  # parts are whole clips
    with pytest.raises(ValueError, match="d: 3 clips cannot make 4 folds"):
        clip_folds(clips[:3], 4, seed=0, val_fraction=0.2, source="d")


def test_cv_command_on_demo_clips(demo_cv, tmp_path, capsys):
    argv, out, status, printed, _ = demo_cv
    assert status == 0
    assert "2-fold cross-validation over 12 clips" in printed and "| text_to_audio_R@1 |" in printed
    folds = json.loads((out / "folds.json").read_text())["folds"]
    assert not set(folds[0]["test"]) & set(folds[1]["test"])  # no clip in two folds
    assert len(folds[0]["test"]) + len(folds[1]["test"]) == 12
    scores = json.loads((out / "cv_scores.json").read_text())
    for k, fold in enumerate(folds):
        assert (out / f"fold{k}" / "checkpoints" / "last" / "model.safetensors").is_file()
        assert (out / f"fold{k}" / "history.json").is_file()
        retrieval = json.loads((out / f"fold{k}" / "retrieval.json").read_text())
        assert retrieval["n_eval_clips"] == len(fold["test"])  # "after" scores the held-out clips
        assert scores["folds"][k]["audio_to_text_mAP@10"] == retrieval["after"]["audio_to_text_mAP@10"]
    for metric in ("text_to_audio_R@5", "audio_to_text_R@10", "mAP@10"):
        values = [s[metric] for s in scores["folds"]]
        assert scores["mean"][metric] == pytest.approx(np.mean(values))
        assert scores["std"][metric] == pytest.approx(np.std(values))
    assert "| mAP@10 |" in (out / "cv_scores.md").read_text()

    out = tmp_path / "cv"  # (a copy of the shared run: what follows changes it)
    shutil.copytree(demo_cv[1], out)
    assert main([*argv, "--out", str(out)]) == 2  # a used run folder is refused, before any work
    assert "already holds files" in capsys.readouterr().err
    # --overwrite replaces it, keeping the user's notes; what it removed and kept was said on stdout, among
    # the scores (`> results.txt` got it): it is a diagnostic, on stderr
    (out / "notes.txt").write_text("mine")
    assert main([*argv, "--out", str(out), "--overwrite"]) == 0
    printed = capsys.readouterr()
    assert "--overwrite: removed the previous run's fold0, fold1" in printed.err
    assert f"--overwrite: kept what the previous run did not write in {out}: notes.txt" in printed.err
    assert "--overwrite" not in printed.out and "| mAP@10 |" in printed.out
    assert (out / "notes.txt").read_text() == "mine"
    assert main([*argv, "--dataset.eval_split", "test", "--out", str(tmp_path / "other")]) == 2
    assert "folds every clip of the folder, whatever its split" in capsys.readouterr().err


def test_cv_output_numbers_each_fold_as_its_folder_and_shows_the_demo_banner_once(demo_cv):
    """The header said "fold 1/2", the run "fold 0 of 2", the folder fold0/; and each fold repeated the
    OFFLINE DEMO banner. As the chord recipe: ``=== fold 0 (1 of 2): RUN/fold0``."""
    _, out, status, stdout, stderr = demo_cv
    assert status == 0
    assert stderr.count("OFFLINE DEMO") == 1  # (a note, on stderr: the results on stdout)
    printed = stdout + stderr
    for k in (0, 1):
        assert f"=== fold {k} ({k + 1} of 2): {out / f'fold{k}'}\n" in printed
        assert f"held-out clips: fold {k} ({k + 1} of 2), grouped by clip" in printed
    assert "/2:" not in printed and " of 2, grouped" not in printed
    assert "| fold 0 | fold 1 |" in printed


def test_folds_too_few_for_two_training_clips_are_refused_before_anything_is_written(tmp_path, capsys):
    """5 clips in 2 folds left a fold 1 training clip: the first fold's run failed with "need at least 2"
    once folds.json was written, and the folder then looked like an interrupted cv run."""
    import soundfile as sf

    data = tmp_path / "clips"
    data.mkdir()
    for i in range(5):
        sf.write(
            data / f"tone{i}.wav", np.sin(np.arange(16000) * (0.05 + 0.01 * i)).astype(np.float32), 16000
        )
        (data / f"tone{i}.txt").write_text(f"a tone number {i}\n")
    out = tmp_path / "cv"
    from clap_folders import (
        tiny_checkpoint,  # (loaded first: the folds are drawn over clips checked at its rate)
    )

    pretrained = tiny_checkpoint(tmp_path)
    argv = ["cv", "--folds", "2", "--data", str(data), "--pretrained", str(pretrained), "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{data}: 5 clips in 2 folds leave fold " in err and "use more --folds" in err, err
    assert not out.exists()


def test_three_clips_in_three_folds_are_refused_naming_only_what_can_help(tmp_path, capsys):
    """3 clips in 3 folds (the most there can be) were refused advising "more --folds" and "a smaller
    --dataset.eval_fraction", neither of which can help: each fold keeps one validation clip whatever the
    fraction. The refusal now asks for clips, and says how many a fold needs."""
    import soundfile as sf

    data = tmp_path / "clips"
    data.mkdir()
    for i in range(3):
        tone = np.sin(np.arange(16000) * (0.05 + 0.01 * i)).astype(np.float32)
        sf.write(data / f"tone{i}.wav", tone, 16000)
        (data / f"tone{i}.txt").write_text(f"a tone number {i}\n")
    from clap_folders import tiny_checkpoint

    argv = ["cv", "--folds", "3", "--data", str(data), "--pretrained", str(tiny_checkpoint(tmp_path))]
    assert main([*argv, "--out", str(tmp_path / "cv")]) == 2
    err = capsys.readouterr().err
    assert "3 clips in 3 folds leave fold " in err and "add clips (a fold needs" in err, err
    assert "--folds (" not in err and "--dataset.eval_fraction" not in err, err
    assert not (tmp_path / "cv").exists()


def test_a_cv_stopped_in_a_fold_says_to_run_it_again_not_a_resume_it_refuses(tmp_path, capsys, monkeypatch):
    """The fold's run printed "Continue training with: ... clap cv ... --resume .../interrupted", which cv
    refuses ("a cross-validation trains every fold from the start")."""
    import signal

    from audiotrain.recipes.clap import train as clap_train

    class Stopping(clap_train.RetrievalEvaluation):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            signal.raise_signal(signal.SIGINT)  # a Ctrl-C: the fold stops after this step

    monkeypatch.setattr(clap_train, "RetrievalEvaluation", Stopping)
    argv = ["cv", "--folds", "2", "--preset", "quick_test", "--demo.folder", str(tmp_path / "cache"),
            "--train.retrieval_every_epoch", "true"]  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "cv")]) == 130
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert "--resume /" not in out and "Continue training" not in out
    assert "training was interrupted (Ctrl-C); evaluating now" in out
    assert "it has no --resume): run it again, into a new --out or with --overwrite" in out


def test_cv_help_does_not_offer_the_resume_it_refuses(tmp_path, capsys):
    """`clap cv --help` listed --resume ("resume training from a checkpoint folder"), which cv refuses."""
    from audiotrain.recipes.clap.cv import main as cv_main

    status = cv_main(["--help"])
    assert status == 0
    shown = capsys.readouterr().out
    assert "--folds" in shown and not re.search(r"(?m)^\s*--resume|\[--resume", shown)
    assert cv_main(["--resume", str(tmp_path / "run" / "checkpoints" / "last")]) == 2  # and still refused
    assert (
        "cv: --resume continues one run, but a cross-validation trains every fold" in capsys.readouterr().err
    )


def _no_training(cfg, argv, fold):
    """Stands in for `cv.run`: the cv command stops at its first fold's run."""
    raise ValueError("not training in this test")


def test_folds_are_balanced_by_captions_and_drawn_with_the_runs_seed(tmp_path, capsys, monkeypatch):
    """CV_HELP says folds are balanced by captions, and folds.json records --train.seed: two clips of 6
    captions and 12 of one make 3 folds of 8 held-out captions each (balanced by clips, seed 0's held out 5,
    10 and 9), and each seed gives its own folds, those `clip_folds` makes with it."""
    from audiotrain.datasets.captions import scan_caption_folder
    from audiotrain.recipes.clap import cv

    import soundfile as sf

    data = tmp_path / "clips"
    data.mkdir()
    counts = [6, 6] + [1] * 12
    lines = []
    for i, n in enumerate(counts):
        sf.write(
            data / f"c{i:02d}.wav", np.sin(np.arange(8000) * (0.05 + 0.01 * i)).astype(np.float32), 16000
        )
        lines.append(
            json.dumps({"file_name": f"c{i:02d}.wav", "caption": [f"clip {i}, {j}" for j in range(n)]})
        )
    (data / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    captions_of = dict(zip((f"c{i:02d}.wav" for i in range(len(counts))), counts))

    monkeypatch.setattr(cv, "run", _no_training)  # folds.json is written before the first fold's run
    # (a folder the tiny model can take: cv loads it before folds.json is written)
    from clap_folders import tiny_checkpoint

    pretrained = tiny_checkpoint(tmp_path)
    clips = scan_caption_folder(data).clips
    held_out = {}
    for seed in (0, 1, 2):
        out = tmp_path / f"cv{seed}"
        argv = ["cv", "--folds", "3", "--data", str(data), "--pretrained", str(pretrained), "--out", str(out),
                "--train.seed", str(seed), "--dataset.eval_fraction", "0.2"]  # fmt: skip
        assert main(argv) == 2 and "not training in this test" in capsys.readouterr().err
        record = json.loads((out / "folds.json").read_text())
        assert record["seed"] == seed
        want = clip_folds(clips, 3, seed, 0.2, str(data))
        assert [f["test"] for f in record["folds"]] == [list(f.test) for f in want]
        assert [sum(captions_of[n] for n in f["test"]) for f in record["folds"]] == [8, 8, 8]
        held_out[seed] = {frozenset(f["test"]) for f in record["folds"]}
    assert len({frozenset(s) for s in held_out.values()}) > 1  # the seed chooses the folds
    # --dataset.eval_fraction is the share of each fold's other clips that validates (CV_HELP)
    argv = ["cv", "--folds", "3", "--data", str(data), "--pretrained", str(pretrained), "--out",
            str(tmp_path / "half"), "--train.seed", "0", "--dataset.eval_fraction", "0.5"]  # fmt: skip
    assert main(argv) == 2 and "not training in this test" in capsys.readouterr().err
    record = json.loads((tmp_path / "half" / "folds.json").read_text())
    assert [f["val"] for f in record["folds"]] == [
        list(f.val) for f in clip_folds(clips, 3, 0, 0.5, str(data))
    ]
    assert [f["val"] for f in record["folds"]] != [
        list(f.val) for f in clip_folds(clips, 3, 0, 0.2, str(data))
    ]


@pytest.mark.parametrize(
    "flags, said",
    [
        # (else it fine-tuned the checkpoint on the demo clips)
        (
            ["--pretrained", str(Path(__file__).parent / "fixtures" / "clap_tiny")],
            "--data FOLDER is required",
        ),
        (["--dataset.test_split", "test"], "a cross-validation folds every clip of the folder"),
        (["--train.processes", "2"], "--train.processes 2: cv trains its folds in this process"),
        # (the demo model's limit, checked at parsing: else once the demo clips and folds.json were written)
        (["--dataset.max_tokens", "1000"], "--dataset.max_tokens 1000: the offline demo's text tower"),
    ],
)
def test_cv_refuses_what_it_cannot_honour_before_anything_is_written(
    tmp_path, capsys, monkeypatch, flags, said
):
    from audiotrain.recipes.clap import cv

    monkeypatch.setattr(cv, "run", _no_training)
    argv = ["cv", "--folds", "2", "--preset", "quick_test", "--demo.folder", str(tmp_path / "cache"), *flags,
            "--out", str(tmp_path / "cv")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert said in err and "not training in this test" not in err, err
    assert not (tmp_path / "cv").exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("edit", ["whisper", "vocab_size"])
def test_a_pretrained_folder_that_cannot_load_is_refused_before_folds_json_is_written(tmp_path, capsys, edit):
    """cv wrote folds.json, then the first fold's run failed to load the model: the cv folder looked like an
    interrupted cv run and the corrected command was refused ("--out ... already holds files")."""
    from clap_folders import tiny_checkpoint, tone_folder

    checkpoint = tiny_checkpoint(tmp_path)
    config = json.loads((checkpoint / "config.json").read_text())
    if edit == "whisper":
        config["model_type"] = "whisper"
    else:
        config["text_config"]["vocab_size"] = 50265  # (not the weights' 320)
    (checkpoint / "config.json").write_text(json.dumps(config))
    data = tone_folder(tmp_path / "data")
    out = tmp_path / "cv"
    argv = ["cv", "--folds", "2", "--data", str(data), "--pretrained", str(checkpoint), "--out", str(out)]
    assert main([*argv, "--train.processes", "1"]) == 2
    err = capsys.readouterr().err
    assert f"error: {checkpoint}" in err and "Traceback" not in err and "=== fold" not in err
    assert not out.exists()


def test_cv_folds_and_counts_hold_only_the_clips_it_can_score(tmp_path, capsys):
    """A folder with clips too short to use (Clotho and AudioCaps exports hold a few) folded them with the
    rest: folds.json listed them among a fold's held-out clips though no run scored them (fold 0 scored 6
    of its 11), and the summary said 'over 22 clips (62 captions)' where 17 clips and 49 captions counted."""
    import soundfile as sf
    from clap_folders import tiny_checkpoint, tone_folder

    data = tone_folder(tmp_path / "clips", clips=8)
    for i in range(3):
        sf.write(data / f"click{i}.wav", np.full(160, 0.1, np.float32), 16000)  # 10 ms
        (data / f"click{i}.txt").write_text(f"a click {i}\nanother click {i}\n")
    out = tmp_path / "cv"
    argv = ["cv", "--folds", "2", "--data", str(data), "--pretrained", str(tiny_checkpoint(tmp_path))]
    assert main([*argv, "--out", str(out), "--train.max_steps", "1", "--train.processes", "1"]) == 0
    assert "2-fold cross-validation over 8 clips (8 captions, grouped by clip)" in capsys.readouterr().out
    folds = json.loads((out / "folds.json").read_text())["folds"]
    assert not any("click" in name for fold in folds for name in fold["train"] + fold["val"] + fold["test"])
    for k, fold in enumerate(folds):
        retrieval = json.loads((out / f"fold{k}" / "retrieval.json").read_text())
        assert retrieval["n_eval_clips"] == len(fold["test"])


def _official_fold_folder(root: Path, folds: int = 3, per_class: int = 2) -> Path:
    """An ESC-50-like folder: tones of 2 classes in `folds` official folds, the fold written as the split."""
    import soundfile as sf

    (root / "audio").mkdir(parents=True)
    rows = ["file_name,caption,label,split"]
    t = np.arange(16000) / 16000
    for fold in range(1, folds + 1):
        for c, label in enumerate(("dog", "chirping_birds")):
            for k in range(per_class):
                name = f"audio/{fold}-{c}{k}-A-{c}.wav"
                sf.write(
                    root / name,
                    (0.3 * np.sin(2 * np.pi * (300 + 200 * c + 10 * k) * t)).astype(np.float32),
                    16000,
                )
                rows.append(f"{name},the sound of a {label} {fold}{k},{label},fold{fold}")
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def official_folds_cv(tmp_path_factory):
    """One --folds_by_split cv of an ESC-50-like folder of 3 official folds (1 step a fold), shared by the
    tests that read it: (its folder, exit status, stdout, stderr)."""
    from clap_folders import tiny_checkpoint

    tmp = tmp_path_factory.mktemp("official_folds_cv")
    data = _official_fold_folder(tmp / "esc")
    argv = ["cv", "--folds_by_split", "--data", str(data), "--pretrained", str(tiny_checkpoint(tmp)),
            "--out", str(tmp / "cv"), "--train.max_steps", "1", "--train.processes", "1"]  # fmt: skip
    return tmp / "cv", *_cv_run(argv)


def test_folds_by_split_holds_out_each_official_fold_as_esc50_is_scored(official_folds_cv):
    """ESC-50 and UrbanSound8K are scored on their official folds (a recording's clips share one); cv drew
    random folds whatever the 'split' column said, and had no way to use the folder's own: --folds_by_split
    holds out each split in turn, training and validating on the other splits' clips."""
    out, status, printed, said = official_folds_cv
    assert status == 0, said
    assert "3-fold cross-validation over 12 clips (12 captions, one fold per split)" in printed
    assert "| zero_shot_top1_accuracy |" in printed
    folds = json.loads((out / "folds.json").read_text())["folds"]
    for k, fold in enumerate(folds):
        assert fold["held_out_split"] == f"fold{k + 1}"
        assert all(n.startswith(f"audio/{k + 1}-") for n in fold["test"])
        assert len(fold["test"]) == 4 and not any(
            n.startswith(f"audio/{k + 1}-") for n in fold["train"] + fold["val"]
        )
        assert len(fold["train"]) + len(fold["val"]) == 8 and fold["val"]


def test_folds_by_split_refuses_clips_without_a_split_and_a_folds_count_it_contradicts(tmp_path, capsys):
    from clap_folders import tiny_checkpoint, tone_folder

    checkpoint = tiny_checkpoint(tmp_path)
    plain = tone_folder(tmp_path / "plain")
    argv = ["cv", "--folds_by_split", "--pretrained", str(checkpoint), "--out", str(tmp_path / "cv")]
    assert main([*argv, "--data", str(plain)]) == 2
    err = capsys.readouterr().err
    assert (
        "--folds_by_split holds out each split once, but 6 clip(s) have no split" in err
        and "Traceback" not in err
    )
    assert main([*argv, "--data", str(_official_fold_folder(tmp_path / "esc")), "--folds", "5"]) == 2
    assert "--folds 5 but --folds_by_split finds 3 splits (fold1, fold2, fold3)" in capsys.readouterr().err
    assert not (tmp_path / "cv").exists()


def test_cv_scores_hold_each_folds_pretrained_scores_beside_its_fine_tuned_ones(official_folds_cv):
    """Zero-shot against fine-tuned, per official fold, is what an ESC-50 study reports; cv_scores held the
    fine-tuned side alone, so the pretrained model's held-out scores had to be gathered from each fold's
    retrieval.json and averaged by hand."""
    out, status, printed, said = official_folds_cv
    assert status == 0, said
    assert "| before_zero_shot_top1_accuracy |" in printed
    scores = json.loads((out / "cv_scores.json").read_text())
    for k in range(3):
        before = json.loads((out / f"fold{k}" / "retrieval.json").read_text())["before"]
        for metric in ("zero_shot_top1_accuracy", "text_to_audio_R@1", "audio_to_text_R@5"):
            assert scores["folds"][k][f"before_{metric}"] == before[metric]
    values = [s["before_zero_shot_top1_accuracy"] for s in scores["folds"]]
    assert scores["mean"]["before_zero_shot_top1_accuracy"] == pytest.approx(np.mean(values))


def test_folds_by_split_numbers_ten_official_folds_as_urbansound8k_does():
    """UrbanSound8K has ten folds: sorted as text, fold10 was held out second, in fold1/ of the cv folder."""
    from audiotrain.recipes.clap.cv import split_folds

    clips = [
        CaptionedClip(Path(f"/d/{f}-{i}.wav"), f"{f}-{i}.wav", (f"cap {f} {i}",), split=f"fold{f}")
        for f in range(1, 11)
        for i in range(2)
    ]
    plan = split_folds(clips, seed=0, val_fraction=0.2, source="d")
    assert [fold.held_out_split for fold in plan] == [f"fold{k}" for k in range(1, 11)]
    assert all(fold.test == (f"{k + 1}-0.wav", f"{k + 1}-1.wav") for k, fold in enumerate(plan))


def test_a_split_flag_beside_folds_by_split_is_refused_saying_how_the_splits_are_used(tmp_path, capsys):
    """cv --folds_by_split --dataset.test_split fold5 (the way to score fold 5 in one run) was refused with
    'folds every clip of the folder, whatever its split', the opposite of what --folds_by_split does."""
    from clap_folders import tiny_checkpoint

    data = _official_fold_folder(tmp_path / "esc")
    argv = ["cv", "--folds_by_split", "--data", str(data), "--pretrained", str(tiny_checkpoint(tmp_path)),
            "--dataset.test_split", "fold3", "--out", str(tmp_path / "cv")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "with --folds_by_split holds out each split in turn" in err and "whatever its split" not in err
    assert not (tmp_path / "cv").exists()


def test_a_diverging_fold_stops_the_cv_with_an_error_in_the_recipes_flags(tmp_path, capsys):
    """``cv --task.learning_rate 1e30``: a fold's non-finite stop ended in a raw traceback (exit status 1),
    advising the Trainer's gradient_clip_val; it is an error line in the flags, naming the fold's
    checkpoint."""
    out = tmp_path / "cv"
    argv = ["cv", "--folds", "2", "--preset", "quick_test", "--demo.folder", str(tmp_path / "cache")]
    argv += ["--task.learning_rate", "1e30", "--train.epochs", "15", "--train.batch_size", "2"]
    assert main([*argv, "--out", str(out)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "Traceback" not in err and "gradient_clip_val" not in err
    assert re.search(r"error: training stopped: \d+ optimizer steps in a row had a non-finite loss", err)
    assert "Lower --task.learning_rate (this run's: 1e+30), set --train.gradient_clip" in err
    assert f"The weights before those steps are in {out / 'fold0' / 'checkpoints' / 'nonfinite'}" in err


def test_a_full_disk_at_a_folds_save_names_the_cv_command_that_runs_again(tmp_path, monkeypatch, capsys):
    """A disk that filled as fold 1's run saved its first checkpoint said 'its folder is left as it was
    found: once there is room, run the same command again', and that cv command was refused: '--out CV
    already holds files' (folds.json, fold0). A cross-validation has no --resume: the error says to run it
    again with --overwrite, and that command finishes it."""
    import errno

    from audiotrain.train import checkpoint as ckpt

    real_save = ckpt._save_arrays

    def full_in_fold1(path, arrays):
        if "fold1" in Path(path).parts:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(path, arrays)

    out = tmp_path / "cv"
    argv = ["cv", "--preset", "quick_test", "--folds", "2", "--out", str(out)]
    argv += ["--demo.folder", str(tmp_path / "demo")]
    monkeypatch.setattr(ckpt, "_save_arrays", full_in_fold1)
    monkeypatch.delenv("AUDIOTRAIN_TRACEBACK", raising=False)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "run the same command again" not in err, err
    assert "once there is room, run the cross-validation again with --overwrite" in err, err
    monkeypatch.setattr(ckpt, "_save_arrays", real_save)
    assert main([*argv, "--overwrite"]) == 0, capsys.readouterr().err
    assert (out / "fold1" / "retrieval.json").is_file()
