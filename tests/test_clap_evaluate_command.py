"""``python -m audiotrain.recipes.clap evaluate``: a model's retrieval scores on a folder, without training."""

import errno
import json
import os

from audiotrain.recipes.clap import main
from audiotrain.recipes.clap.report import format_columns

import pytest
from clap_folders import tiny_checkpoint, tone_folder
from fifo_waits import returns_without_waiting


def _fine_tune(tmp, *flags: str):
    """A tiny checkpoint fine-tuned on a folder of tones with a train and a validation split (the validation
    clips give its "before" and "after"): (the checkpoint, the data folder, the run folder)."""
    checkpoint = tiny_checkpoint(tmp)
    data = tmp / "data"
    data.mkdir()
    tone_folder(data / "train", 6)
    tone_folder(data / "validation", 4)
    run = tmp / "run"
    argv = ["--data", str(data), "--pretrained", str(checkpoint), "--out", str(run),
            "--train.epochs", "2", "--train.batch_size", "2", "--task.learning_rate", "1e-3",
            "--train.compile", "false", "--train.progress_bar", "false", "--dataset.num_workers", "0",
            *flags]  # fmt: skip
    assert main(argv) == 0
    return checkpoint, data, run


@pytest.fixture(scope="module")
def fine_tuned(tmp_path_factory):
    return _fine_tune(tmp_path_factory.mktemp("clap_evaluate_command"))


def _evaluate(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main(["evaluate", *map(str, argv)])
    printed = capsys.readouterr()
    return status, printed.out, printed.err


def test_a_runs_model_on_its_evaluation_clips_scores_its_after_and_its_checkpoint_its_before(
    fine_tuned, tmp_path, capsys
):
    # The proof that evaluate scores as the run does: the run's hf_model/ (a run folder means it) on the
    # run's evaluation split gives the run's "after" exactly, and the checkpoint it started from its "before".
    checkpoint, data, run = fine_tuned
    recorded = json.loads((run / "retrieval.json").read_text())
    assert recorded["before"] != recorded["after"]  # (so that each equality below says which model scored)
    for model, when in ((run, "after"), (run / "hf_model", "after"), (checkpoint, "before")):
        out = tmp_path / f"{when}-{model.name}.json"
        status, printed, _ = _evaluate(capsys, "--model", model, "--data", data, "--split", "validation",
                                       "--out", out)  # fmt: skip
        assert status == 0
        scored = json.loads(out.read_text())
        assert scored["scores"] == recorded[when], model
        assert format_columns({"score": recorded[when]}) in printed
        assert "(4 clips, 4 captions)" in printed and "split 'validation'" in printed
        assert scored["n_clips"] == recorded["n_eval_clips"] and scored["split"] == "validation"
        assert scored["n_captions"] == recorded["n_eval_captions"] == 4
        assert scored["data_folder"] == str(data) and scored["model"] == str(model)
        assert scored["versions"]["audiotrain"]


def test_a_bf16_true_runs_after_is_scored_again_with_its_precision(tmp_path, capsys, monkeypatch):
    # A bf16-true run scores its "after" with bfloat16 weights (the Trainer casts the model), its export
    # holds them: --precision bf16-true scores them so again (the weights' type, seen by the scoring, says so
    # where the 4 clips' ranks alone would not).
    from audiotrain.recipes.clap import train as clap_train

    import mlx.core as mx

    _, data, run = _fine_tune(tmp_path, "--train.precision", "bf16-true", "--train.epochs", "1")
    after = json.loads((run / "retrieval.json").read_text())["after"]
    scoring, weight_types = clap_train.evaluate_clap, []

    def noting_the_weights(model, *args, **kwargs):
        weight_types.append(model.logit_scale_a.dtype)
        return scoring(model, *args, **kwargs)

    monkeypatch.setattr(clap_train, "evaluate_clap", noting_the_weights)
    out = tmp_path / "scores.json"
    status, _, _ = _evaluate(capsys, "--model", run, "--data", data, "--split", "validation",
                             "--precision", "bf16-true", "--out", out)  # fmt: skip
    assert status == 0 and weight_types == [mx.bfloat16]
    scored = json.loads(out.read_text())
    assert scored["scores"] == after and scored["settings"]["precision"] == "bf16-true"
    status, _, _ = _evaluate(capsys, "--model", run, "--data", data, "--split", "validation")
    assert status == 0 and weight_types == [mx.bfloat16, mx.float32]  # (the default: float32, '32')


def test_a_runs_after_is_scored_again_with_the_caption_length_the_run_cut_its_captions_to(tmp_path, capsys):
    # A run's hf_model/ does not record its --dataset.max_tokens (a --preset quick_test run with --data: 24):
    # evaluate scored the run's captions at 77 tokens, not its "after". The run folder and its hf_model/
    # take the run's length where the flag is not given; a model folder elsewhere keeps the default.
    _, data, run = _fine_tune(tmp_path, "--dataset.max_tokens", "4", "--train.epochs", "1")
    after = json.loads((run / "retrieval.json").read_text())["after"]
    for model in (run, run / "hf_model"):
        out = tmp_path / f"{model.name}.json"
        status, _, err = _evaluate(capsys, "--model", model, "--data", data, "--split", "validation",
                                   "--out", out)  # fmt: skip
        assert status == 0 and "--dataset.max_tokens unset: 4, as the run scored its captions" in err
        scored = json.loads(out.read_text())
        assert scored["scores"] == after and scored["settings"]["dataset.max_tokens"] == 4
    status, _, err = _evaluate(capsys, "--model", run, "--data", data, "--split", "validation",
                               "--dataset.max_tokens", "77")  # fmt: skip
    assert status == 0 and "unset" not in err and "captions: 77 tokens each" in err


def test_without_split_every_clip_of_the_folder_is_scored(fine_tuned, tmp_path, capsys):
    _, data, run = fine_tuned
    out = tmp_path / "all.json"
    status, printed, _ = _evaluate(capsys, "--model", run, "--data", data, "--out", out)
    assert status == 0 and "(10 clips, 10 captions)" in printed
    scored = json.loads(out.read_text())
    assert scored["n_clips"] == 10 and scored["split"] is None and scored["scores"]["n_audio"] == 10
    status, printed, _ = _evaluate(capsys, "--model", run, "--data", data, "--split", "train")
    assert status == 0 and "(6 clips, 6 captions)" in printed


def test_the_scores_do_not_depend_on_the_batch_size_one_clip_a_batch_included(fine_tuned, tmp_path, capsys):
    # --help: "the scores do not depend on it"; 1 was refused with training's reason ("contrastive learning
    # needs negatives in the batch"), though scoring computes no loss.
    _, data, run = fine_tuned
    scores = []
    for size in ("1", "3", "8"):
        out = tmp_path / f"batch{size}.json"
        status, _, _ = _evaluate(capsys, "--model", run, "--data", data, "--batch_size", size, "--out", out)
        assert status == 0, size
        scores.append(json.loads(out.read_text())["scores"])
    assert scores[0] == scores[1] == scores[2]
    status, _, err = _evaluate(capsys, "--model", run, "--data", data, "--batch_size", "0")
    assert status == 2 and "error: --batch_size must be an integer >= 1" in err and "contrastive" not in err


def test_an_unknown_split_is_an_error_listing_the_folders_splits(fine_tuned, capsys):
    _, data, run = fine_tuned
    status, printed, err = _evaluate(capsys, "--model", run, "--data", data, "--split", "evaluation")
    assert status == 2 and "score" not in printed
    assert "error: --split evaluation: " in err and "splits present: train (6 clips), validation (4)" in err


def test_an_existing_out_file_is_refused_without_overwrite_and_replaced_whole_with_it(
    fine_tuned, tmp_path, capsys, monkeypatch
):
    _, data, run = fine_tuned
    out = tmp_path / "scores.json"
    out.write_text("earlier scores\n")
    status, printed, err = _evaluate(capsys, "--model", run, "--data", data, "--out", out)
    assert status == 2 and printed == ""
    assert f"error: --out {out} exists; pass --overwrite" in err
    assert out.read_text() == "earlier scores\n"
    # A write that fails at its end (a full disk as the file is swapped in) leaves the earlier file whole,
    # and nothing beside it.
    replace = os.replace

    def full_disk_at(target):
        def replacing(source, destination):
            if str(destination) == str(target):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return replace(source, destination)

        return replacing

    monkeypatch.setattr(os, "replace", full_disk_at(out))
    status, _, err = _evaluate(capsys, "--model", run, "--data", data, "--out", out, "--overwrite")
    assert status == 1 and str(out) in err  # (stopped, not done: it is written once there is room)
    assert out.read_text() == "earlier scores\n" and [p.name for p in tmp_path.iterdir()] == ["scores.json"]
    monkeypatch.setattr(os, "replace", replace)
    status, printed, _ = _evaluate(capsys, "--model", run, "--data", data, "--out", out, "--overwrite")
    assert status == 0 and f"scores written to {out}" in printed
    assert json.loads(out.read_text())["n_clips"] == 10


def test_an_out_folder_or_fifo_is_refused_naming_it_and_an_out_in_a_new_folder_is_written(
    fine_tuned, tmp_path, capsys
):
    # A folder was a raw IsADirectoryError traceback; a FIFO (a device: /dev/full) was replaced by the
    # file; a folder not made yet failed once every clip was scored, naming a temporary file.
    _, data, run = fine_tuned
    fifo = tmp_path / "scores.fifo"
    os.mkfifo(fifo)
    for out, expected in ((tmp_path, "a folder"), (fifo, "not a regular file")):
        status, printed, err = _evaluate(capsys, "--model", run, "--data", data, "--out", out, "--overwrite")
        assert status == 2 and printed == "" and f"error: --out {out}: {expected}" in err
    assert fifo.is_fifo()
    out = tmp_path / "new" / "scores.json"
    status, printed, _ = _evaluate(capsys, "--model", run, "--data", data, "--out", out)
    assert status == 0 and f"scores written to {out}" in printed
    assert json.loads(out.read_text())["n_clips"] == 10


def test_a_trainer_checkpoint_is_refused_with_the_export_that_makes_it_a_model_folder(fine_tuned, capsys):
    _, data, run = fine_tuned
    last = run / "checkpoints" / "last"
    status, printed, err = _evaluate(capsys, "--model", last, "--data", data)
    assert status == 2 and printed == ""
    assert f"error: --model {last}: a trainer checkpoint folder" in err
    assert f"export --checkpoint {last} --out DIR, then --model DIR" in err


def test_a_chord_recipe_run_or_checkpoint_is_refused_naming_the_chord_recipes_evaluate(tmp_path, capsys):
    # They were told to run the CLAP export (of a run "that did not finish"), which fails on them.
    from audiotrain.train.checkpoint import write_checkpoint

    import mlx.core as mx

    run = tmp_path / "chords_run"
    checkpoint = run / "checkpoints" / "best"
    progress = {"epoch": 1, "batch_in_epoch": 0, "global_step": 10, "total_batches": 10, "micro_batches": 0}
    state = {"progress": progress, "random": {"mlx": [0, 1]}, "module_state": {"chord_recognition": {}}}
    write_checkpoint(checkpoint, {"w": mx.zeros((2,))}, {}, {}, state)
    (run / "config.json").write_text(json.dumps({"config": {"num_epochs": 1}}))
    data = tone_folder(tmp_path / "data", 2)
    for model, what in ((run, "run"), (checkpoint, "checkpoint")):
        status, printed, err = _evaluate(capsys, "--model", model, "--data", data)
        assert status == 2 and printed == ""
        assert f"error: --model {model}: a chord recipe {what}, not a CLAP model" in err
        assert f"audiotrain.recipes.chords evaluate --checkpoint {model} --data DIR" in err
        assert "clap export" not in err


def test_a_missing_model_folder_or_no_model_is_an_error_naming_what_is_expected(fine_tuned, tmp_path, capsys):
    _, data, _ = fine_tuned
    missing = tmp_path / "no_model"
    status, _, err = _evaluate(capsys, "--model", missing, "--data", data)
    assert (
        status == 2
        and f"error: --model {missing}: no such folder; expected a Hugging Face CLAP folder" in err
    )
    status, _, err = _evaluate(capsys, "--model", data, "--data", data)  # a folder, of something else
    assert status == 2 and f"error: --model {data}: not a Hugging Face CLAP folder" in err
    # Without --model (the training command's offline demo has no model to score): where to find one.
    status, _, err = _evaluate(capsys, "--data", data)
    assert status == 2 and "--model is required" in err and "RUN/hf_model" in err
    status, _, err = _evaluate(capsys, "--model", "", "--data", data)  # (--model "$MODEL", MODEL unset)
    assert status == 2 and "error: argument --model: an empty path" in err and "pretrained" not in err


def test_evaluate_is_one_of_the_commands_the_training_help_names():
    from audiotrain.recipes.clap import build_parser
    from audiotrain.recipes.clap.cli import COMMANDS

    assert "evaluate" in COMMANDS
    assert "evaluate --model RUN/hf_model" in build_parser().format_help()


def test_a_hub_id_with_a_trailing_slash_is_named_with_the_id_it_may_mean(tmp_path, capsys, monkeypatch):
    """--model laion/clap-htsat-unfused/ (copied with the hub page's slash) was only "no such folder"."""
    monkeypatch.chdir(tmp_path)
    data = tone_folder(tmp_path / "data", 2)
    status, _, err = _evaluate(capsys, "--model", "laion/clap-htsat-unfused/", "--data", data)
    assert status == 2
    assert (
        "error: --model laion/clap-htsat-unfused/: no such folder (a hub id without the trailing slash: "
        "laion/clap-htsat-unfused); expected a Hugging Face CLAP folder" in err
    )


def test_a_run_folders_checkpoint_holding_a_fifo_is_refused_without_waiting(tmp_path, capsys):
    """A downloaded CLAP run without hf_model/ whose checkpoints/last/trainer_state.json was a FIFO kept
    evaluate --model RUN waiting for a writer forever (each checkpoint is read to tell a chord recipe's)."""
    run = tmp_path / "run"
    (run / "checkpoints" / "last").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"config": {}, "model_source": "laion/clap-htsat-unfused"}))
    fifo = run / "checkpoints" / "last" / "trainer_state.json"
    os.mkfifo(fifo)
    data = tone_folder(tmp_path / "data", 2)
    status, printed, err = returns_without_waiting(
        lambda: _evaluate(capsys, "--model", run, "--data", data), fifo
    )
    assert status == 2 and f"error: --model {run}: a run folder without hf_model/" in err


def test_a_run_folders_hf_model_linked_from_elsewhere_is_refused_naming_the_link(tmp_path, capsys):
    """--model RUN scored RUN/hf_model when it was a link to a model folder elsewhere: loading reads nothing
    outside the folder it was given (a chords run's checkpoints/best linked out is refused so)."""
    elsewhere = tiny_checkpoint(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"config": {}, "model_source": str(elsewhere)}))
    os.symlink(elsewhere, run / "hf_model")
    data = tone_folder(tmp_path / "data", 2)
    status, printed, err = _evaluate(capsys, "--model", run, "--data", data)
    assert status == 2 and printed == ""
    assert (
        f"error: {run / 'hf_model'} leads outside the run folder {run} (a link to {elsewhere.resolve()})"
        in err
    )


@pytest.mark.parametrize("name", ["config.json", "preprocessor_config.json", "merges.txt"])
def test_a_model_folder_whose_file_is_a_fifo_or_a_folder_is_refused_naming_that_file(tmp_path, capsys, name):
    """A downloaded CLAP folder whose config.json or preprocessor_config.json was a FIFO (or whose merges.txt
    was, with no tokenizer.json) was "not a Hugging Face CLAP folder", naming no file; none is opened."""
    model = tiny_checkpoint(tmp_path)
    if name == "merges.txt":
        (model / "tokenizer.json").unlink()
    (model / name).unlink()
    os.mkfifo(model / name)
    data = tone_folder(tmp_path / "data", 2)
    status, printed, err = _evaluate(capsys, "--model", model, "--data", data)
    assert status == 2 and printed == ""
    assert (
        f"error: --model {model}: {model / name}: is a FIFO, not a regular file; expected a Hugging Face CLAP "
        "folder" in err
    )
    (model / name).unlink()
    (model / name).mkdir()
    status, printed, err = _evaluate(capsys, "--model", model, "--data", data)
    assert status == 2 and f"error: --model {model}: {model / name}: is a folder, not a regular file" in err


def test_captions_shared_by_several_clips_are_named_with_the_scores_they_cap(tmp_path, capsys):
    # A sound-effects library captions many clips alike ("a door slam"). Identical captions tie, and ties
    # count against the query, so a perfect model's audio→text R@1 is 0 on those clips: nothing said so.
    model = tiny_checkpoint(tmp_path)
    data = tone_folder(tmp_path / "data", 6)
    for i in range(3):
        (data / f"tone{i}.txt").write_text("a door slam\n")
    status, _, err = _evaluate(capsys, "--model", model, "--data", data)
    assert status == 0
    assert "note: 1 caption is shared by more than one clip ('a door slam': 3 clips)" in err
    assert "a clip whose every caption is shared scores R@1 0 with any model" in err
    (data / "tone0.txt").write_text("a door slam, close\n")
    (data / "tone1.txt").write_text("a door slam, far\n")
    status, _, err = _evaluate(capsys, "--model", model, "--data", data)
    assert status == 0 and "shared by more than one clip" not in err


def test_the_score_table_keeps_its_columns_on_an_ascii_terminal(fine_tuned):
    """On a terminal that takes ASCII alone (PYTHONIOENCODING=ascii, LC_ALL=C) the rows read 'text\\u2192audio
    R@1' with their scores 5 columns right of the heading (the label was padded before the stream escaped its
    arrow); they read 'text->audio R@1', each score under its heading."""
    import subprocess
    import sys

    from child_processes import child_env

    _, data, run = fine_tuned
    env = child_env({"PYTHONIOENCODING": "ascii", "LC_ALL": "C", "LANG": "C"})
    done = subprocess.run([sys.executable, "-m", "audiotrain.recipes.clap", "evaluate", "--model", str(run),
                           "--data", str(data)], capture_output=True, env=env, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode("ascii").splitlines()
    heading = next(i for i, line in enumerate(lines) if line.strip() == "score")
    rows = lines[heading + 1 : heading + 9]
    assert rows[0].startswith("text->audio R@1 ") and rows[4].startswith("audio->text R@1 "), rows
    assert {len(row) for row in rows} == {len(lines[heading])}, "\n".join(lines[heading : heading + 9])


def test_class_names_with_underscores_are_named_with_the_prompt_they_make(tmp_path, capsys):
    """ESC-50's classes (chirping_birds) went into the zero-shot prompts as written, 'This is a sound of
    chirping_birds.', without a word, where LAION's published scores prompt with 'chirping birds'."""
    data = tmp_path / "esc"
    tone_folder(data, clips=4)
    rows = ["file_name,caption,label"] + [
        f"tone{i}.wav,a tone {i},{('chirping_birds', 'dog')[i % 2]}" for i in range(4)
    ]
    (data / "metadata.csv").write_text("\n".join(rows) + "\n")
    argv = ["--model", str(tiny_checkpoint(tmp_path)), "--data", str(data)]
    code, out, err = _evaluate(capsys, *argv, "--dataset.prompt_template", "the sound of a {}")
    assert code == 0 and "zero shot top1 accuracy" in out, err
    assert "'chirping_birds': 'the sound of a chirping_birds'" in err and "'chirping birds'" in err
    spaced = (data / "metadata.csv").read_text().replace("chirping_birds", "chirping birds")
    (data / "metadata.csv").write_text(spaced)
    assert "'_' included" not in _evaluate(capsys, *argv)[2]


def test_esc50s_category_and_fold_columns_are_named_as_not_read(tmp_path, capsys):
    """ESC-50's meta CSV made metadata.csv kept its 'category' and 'fold' columns: no clip got a class, and
    zero-shot was not scored, without a word saying why."""
    data = tmp_path / "esc"
    tone_folder(data, clips=4)
    rows = ["file_name,caption,category,fold"] + [f"tone{i}.wav,a tone {i},dog,{i % 2 + 1}" for i in range(4)]
    (data / "metadata.csv").write_text("\n".join(rows) + "\n")
    code, out, err = _evaluate(capsys, "--model", tiny_checkpoint(tmp_path), "--data", data)
    assert code == 0 and "zero shot" not in out, err
    assert "metadata.csv columns not read: 'category' (the zero-shot class column is named label)" in err
    assert "'fold' (splits come from a split column" in err


def test_a_runs_after_is_scored_again_with_the_zero_shot_prompt_the_run_used(tmp_path, capsys):
    """A run fine-tuned with --dataset.prompt_template 'the sound of a {}' was scored again by evaluate with
    'This is a sound of {}.': its zero-shot scores were not the run's "after", which README promises."""
    data = tmp_path / "data"
    data.mkdir()
    for split, clips in (("train", 4), ("validation", 4)):
        tone_folder(data / split, clips)
    rows = ["file_name,caption,label"] + [
        f"{split}/tone{i}.wav,a tone {i},{('dog', 'rain')[i % 2]}"
        for split in ("train", "validation")
        for i in range(4)
    ]
    (data / "metadata.csv").write_text("\n".join(rows) + "\n")
    for txt in data.glob("*/*.txt"):
        txt.unlink()
    run = tmp_path / "run"
    argv = ["--data", str(data), "--pretrained", str(tiny_checkpoint(tmp_path)), "--out", str(run),
            "--train.epochs", "1", "--train.batch_size", "2", "--train.processes", "1",
            "--dataset.prompt_template", "the sound of a {}"]  # fmt: skip
    assert main(argv) == 0
    after = json.loads((run / "retrieval.json").read_text())["after"]
    assert "zero_shot_top1_accuracy" in after
    out = tmp_path / "again.json"
    status, _, err = _evaluate(capsys, "--model", run / "hf_model", "--data", data, "--split", "validation",
                               "--out", out)  # fmt: skip
    assert status == 0 and "--dataset.prompt_template unset: 'the sound of a {}', as the run prompted" in err
    scored = json.loads(out.read_text())
    assert scored["settings"]["dataset.prompt_template"] == "the sound of a {}" and scored["scores"] == after


def test_class_numbers_as_labels_are_named_with_the_prompt_they_make(tmp_path, capsys):
    """ESC-50's 'target' (0 ... 49) copied as the label made prompts 'This is a sound of 0.' without a
    word."""
    data = tmp_path / "esc"
    tone_folder(data, clips=4)
    rows = ["file_name,caption,label"] + [f"tone{i}.wav,a tone {i},{i % 2}" for i in range(4)]
    (data / "metadata.csv").write_text("\n".join(rows) + "\n")
    code, out, err = _evaluate(capsys, "--model", tiny_checkpoint(tmp_path), "--data", data)
    assert code == 0 and "zero shot top1 accuracy" in out, err
    assert "note: the zero-shot classes are numbers ('0': 'This is a sound of 0.')" in err


def test_captions_that_differ_only_past_the_token_cut_are_named_as_shared(tmp_path, capsys):
    # Two long captions the same in their first --dataset.max_tokens tokens embed alike and tie as a shared
    # caption does (audio→text R@1 0 for a clip with no other caption), but the note compared the texts and
    # said nothing.
    model = tiny_checkpoint(tmp_path)
    data = tone_folder(tmp_path / "data", 3)
    start = "a long recording of a busy street with cars "  # (about 30 tokens of the tiny tokenizer)
    (data / "tone0.txt").write_text(start + "and a dog\n")
    (data / "tone1.txt").write_text(start + "and a cat\n")
    status, _, err = _evaluate(capsys, "--model", model, "--data", data, "--dataset.max_tokens", "24")
    assert status == 0
    assert "note: 1 caption is shared by more than one clip (" in err
    assert "and 1 other caption the same in its first 24 tokens: 2 clips)" in err
    status, _, err = _evaluate(capsys, "--model", model, "--data", data)  # 77 tokens: the ends are read
    assert status == 0 and "shared by more than one clip" not in err


def test_clips_that_are_copies_of_one_recording_are_named_with_the_scores_they_cap(tmp_path, capsys):
    # A recording copied under another name (a library's duplicate) embeds exactly as the original, and ties
    # count against the query, so each copy's captions scored text→audio R@1 0 with any model: nothing said
    # so.
    import shutil

    model = tiny_checkpoint(tmp_path)
    data = tone_folder(tmp_path / "data", 4)
    shutil.copy(data / "tone0.wav", data / "tone0_again.wav")
    (data / "tone0_again.txt").write_text("the first tone once more\n")
    status, _, err = _evaluate(capsys, "--model", model, "--data", data)
    assert status == 0
    assert "note: 2 clips are copies of one recording (tone0.wav = tone0_again.wav)" in err
    assert "their captions score text→audio R@1 0 with any model" in err
    (data / "tone0_again.wav").unlink()
    (data / "tone0_again.txt").unlink()
    status, _, err = _evaluate(capsys, "--model", model, "--data", data)
    assert status == 0 and "copies of one recording" not in err


def test_the_out_file_keeps_the_notes_that_qualify_its_scores(tmp_path, capsys):
    # The shared-caption note (audio→text R@1 capped whatever the model) went to stderr alone: the --out file
    # a paper's table is made from held the capped scores without it.
    model = tiny_checkpoint(tmp_path)
    data = tone_folder(tmp_path / "data", 3)
    (data / "tone0.txt").write_text("a door slam\n")
    (data / "tone1.txt").write_text("a door slam\n")
    out = tmp_path / "scores.json"
    status, _, err = _evaluate(capsys, "--model", model, "--data", data, "--out", out)
    assert status == 0
    notes = json.loads(out.read_text())["notes"]
    assert [note for note in notes if "shared by more than one clip ('a door slam': 2 clips)" in note]
    assert all(note in err for note in notes) and len(notes) == 3  # (and the few-clips and window notes)


def test_a_runs_retrieval_json_keeps_the_notes_that_qualify_its_scores(fine_tuned):
    # As the evaluate command's --out file: the run's before/after scores of 4 clips were recorded without the
    # note that any model scores text→audio R@k k/4 by chance there.
    _, _, run = fine_tuned
    notes = json.loads((run / "retrieval.json").read_text())["notes"]
    assert [note for note in notes if note.startswith("note: only 4 evaluation clips")]


def test_recordings_longer_than_the_window_are_named_with_the_centre_window_they_are_scored_on(
    tmp_path, capsys
):
    # 20-60 s field recordings are scored on the front end's window alone (2.5 s here): nothing said so.
    import numpy as np
    import soundfile as sf

    model = tiny_checkpoint(tmp_path)
    data = tone_folder(tmp_path / "data", 3)
    sf.write(data / "field.wav", np.zeros(16000 * 8, dtype=np.float32) + 0.01, 16000)
    (data / "field.txt").write_text("rain on leaves\n")
    status, _, err = _evaluate(capsys, "--model", model, "--data", data)
    assert status == 0
    assert (
        "note: 1 of the 4 scored clips is longer than the front end's 2.5 s window (max_length_s; up to "
        "8.0 s): they are scored on their centre 2.5 s (the same every time); 3 are shorter (from 1.0 s)"
        in err
    )
