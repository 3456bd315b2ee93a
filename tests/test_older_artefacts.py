"""What an upgrade meets from the user's side: run records and checkpoints that older versions of audiotrain
wrote, used by this one (each made here by editing what this version writes into what the older one wrote),
and a finished run taken further with other settings. The cache an upgrade leaves: tests/test_feature_cache.py."""

import dataclasses
import json
import shutil
from pathlib import Path

from audiotrain.distributed.local import LocalPlan
from audiotrain.recipes import _run
from audiotrain.recipes.chords import cli as chords
from audiotrain.recipes.chords.config import TrainingConfig
from audiotrain.recipes.chords.song_record import UNRECORDED_DEMO_FLAG
from audiotrain.recipes.chords.task import CHECKPOINT_KEY
from audiotrain.recipes.clap import cli as clap
from audiotrain.train import checkpoint as ckpt

import pytest

FLAGS = [
    "--data.demo_songs", "4", "--data.demo_test_songs", "1", "--data.demo_seconds", "6",
    "--data.window_frames", "32", "--batch_size", "4", "--num_epochs", "2", "--save_every", "0",
    "--model.d_model", "32", "--model.n_layers", "1", "--model.n_heads", "2", "--model.ff_dim", "64",
    "--progress_bar", "false",
]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny finished demo run (2 epochs), its cache beside it: (its argv without --run_dir, its folder)."""
    root = tmp_path_factory.mktemp("older")
    argv = [*FLAGS, "--data.cache_dir", str(root / "cache")]
    assert chords.main([*argv, "--run_dir", str(root / "run")]) == 0
    return argv, root / "run"


def _copy(run_dir: Path, to: Path) -> Path:
    shutil.copytree(run_dir, to)
    return to


def _edit_state(checkpoint: Path, edit) -> None:
    path = checkpoint / ckpt.STATE_FILE
    state = json.loads(path.read_text())
    edit(state)
    path.write_text(json.dumps(state))


class Stopped(Exception):
    pass


def _stop(*args, **kwargs):
    raise Stopped


# ---- --config RUN/config.json of an older run --------------------------------------------------------------


def test_an_older_run_record_is_read_as_its_version_ran_and_the_rest_is_named(run, tmp_path, capsys):
    """A config.json without the settings added since was filled with today's defaults without a word: the
    run trained another model size (bass view, chord head) on other demo songs in two processes."""
    _, run_dir = run
    record = json.loads((run_dir / "config.json").read_text())
    settings = record["config"]
    for section, name in (
        ("features", "bass_view_bins"),
        ("features", "tuning_correction"),
        ("model", "bass_view_bins"),
        ("model", "chord_head"),
        ("model", "bass_bins"),
        ("data", "demo_styles"),
        ("decode", "silence_db"),
    ):
        del settings[section][name]
    del settings["processes"], settings["logger"]
    old = tmp_path / "config.json"
    old.write_text(json.dumps(record))
    parser = chords._training_parser("chords", "", needs_data=False, init_from=True)
    capsys.readouterr()
    config = chords._config_from_args(
        parser.parse_args(["--config", str(old), "--features.tuning_correction", "true"])
    )
    assert config.features.bass_view_bins == 0 and config.model.bass_view_bins == 0
    assert config.model.chord_head is False and config.model.bass_bins == 0
    assert config.data.demo_styles == ("train",) and config.processes == 1
    assert config.features.tuning_correction is True  # given as a flag: the flag wins, and is not named
    assert config.decode.silence_db == TrainingConfig().decode.silence_db
    out = capsys.readouterr().err
    assert len(out.strip().splitlines()) == 1, out
    assert f"note: {old} was written by an older audiotrain" in out
    assert "read as that version ran: processes 1, data.demo_styles train, features.bass_view_bins 0" in out
    assert "model.bass_bins 0, model.chord_head false" in out
    assert "today's defaults for decode.silence_db, logger (all of it)" in out
    assert "tuning_correction" not in out and "model.bass_view_bins" not in out  # a flag; derived
    # A record with every setting, and a plain settings file (it holds only what it changes), say nothing.
    chords._config_from_args(parser.parse_args(["--config", str(run_dir / "config.json")]))
    (tmp_path / "mine.yaml").write_text("num_epochs: 3\n")
    chords._config_from_args(parser.parse_args(["--config", str(tmp_path / "mine.yaml")]))
    assert capsys.readouterr().err == ""


def test_an_older_run_record_without_the_feature_kind_repeats_the_cqt_without_a_note(run, tmp_path, capsys):
    """A config.json of before mel features (2026-11-30) was noted as run with "today's defaults for
    features.kind, features.mel_fmax, so this run may differ from that one": every run was the CQT then, which
    is today's default, and the CQT reads no mel_fmax. Nothing differs, so nothing is noted."""
    _, run_dir = run
    record = json.loads((run_dir / "config.json").read_text())
    del record["config"]["features"]["kind"], record["config"]["features"]["mel_fmax"]
    old = tmp_path / "config.json"
    old.write_text(json.dumps(record))
    parser = chords._training_parser("chords", "", needs_data=False, init_from=True)
    capsys.readouterr()
    config = chords._config_from_args(parser.parse_args(["--config", str(old)]))
    assert config.features == TrainingConfig().features
    assert capsys.readouterr().err == ""


def test_the_record_of_a_run_taken_further_with_other_settings_says_what_a_run_from_it_uses(
    run, tmp_path, capsys
):
    """--config RUN/config.json of a run resumed with a new --learning_rate and --num_epochs (its config.json
    keeps the earlier values under "earlier") trained its first epochs at the last rate, without a word."""
    _, run_dir = run
    record = json.loads((run_dir / "config.json").read_text())
    record["config"].update(learning_rate=0.004, num_epochs=4)
    record["earlier"] = [
        {"until_epoch": 2, "checkpoint": "c", "settings": {"learning_rate": 0.002, "num_epochs": 2}},
        {"until_epoch": 3, "checkpoint": "c", "settings": {"num_epochs": 3}},
    ]
    taken_further = tmp_path / "config.json"
    taken_further.write_text(json.dumps(record))
    parser = chords._training_parser("chords", "", needs_data=False, init_from=True)
    capsys.readouterr()
    config = chords._config_from_args(
        parser.parse_args(["--config", str(taken_further), "--num_epochs", "5"])
    )
    assert config.learning_rate == 0.004 and config.num_epochs == 5
    out = capsys.readouterr().err
    assert len(out.strip().splitlines()) == 1, out
    assert f"note: {taken_further} records a run taken further (--resume) with other settings" in out
    assert (
        "learning_rate 0.002 for its first 2 epochs, then 0.004; "
        "num_epochs 2 for its first 2 epochs, 3 until epoch 3, then 4." in out
    )
    assert (
        "This run uses one value of each throughout: learning_rate 0.004, num_epochs 5 (--num_epochs)" in out
    )
    assert "(to use those it began with, add --learning_rate 0.002 --num_epochs 2)" in out
    # A resume goes on with the last settings (and says what it changes); the run's own record says nothing.
    chords._config_from_args(parser.parse_args(["--config", str(taken_further), "--resume", str(run_dir)]))
    chords._config_from_args(parser.parse_args(["--config", str(run_dir / "config.json")]))
    assert capsys.readouterr().err == ""


def test_an_older_clap_run_record_trains_in_one_process_as_it_did(tmp_path, capsys):
    """Every CLAP run before the recipe started one process per core trained in one; repeated with today's
    default (one per core) it trained in two, to far other losses."""
    args = ["--demo.clips", "8", "--train.epochs", "1"]
    config, _ = clap.parse_arguments(clap.build_parser(), args)
    record = {"config": json.loads(json.dumps(dataclasses.asdict(config))), "versions": {}, "command": []}
    del record["config"]["train"]["processes"]
    (tmp_path / "config.json").write_text(json.dumps(record))
    capsys.readouterr()
    cfg = clap.parse_config(["--config", str(tmp_path / "config.json")])
    assert cfg.train.processes == 1
    assert "read as that version ran: train.processes 1" in capsys.readouterr().err


# ---- predict and evaluate of an older checkpoint -------------------------------------------------------


def test_an_older_checkpoint_decoded_with_todays_defaults_says_so_once_with_the_flags_that_decode_as_it_did(
    run, tmp_path, annotated_song, capsys
):
    """A checkpoint stored only the decoding settings of its version: predict decoded it with today's
    refine_boundaries, bass_onset_frames, silence_db and test-time augmentation without a word, and its
    labels differed from those its version wrote (the four flags the note names gave them byte for byte)."""
    _, run_dir = run
    old = _copy(run_dir, tmp_path / "old")
    best = old / "checkpoints" / "best"
    added = ("refine_boundaries", "bass_onset_frames", "silence_db")  # (after the joint chord head)
    _edit_state(
        best, lambda state: [state["module_state"][CHECKPOINT_KEY]["decode"].pop(name) for name in added]
    )
    capsys.readouterr()
    lab = tmp_path / "song.lab"
    assert chords.main(["predict", "--checkpoint", str(old), str(annotated_song), "-o", str(lab)]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    assert notes == [
        f"note: {best} was written by an older audiotrain, without settings added since; today's defaults "
        "for decode.refine_boundaries, decode.bass_onset_frames, decode.silence_db, test-time augmentation "
        "(--tta 2), so its labels may differ from those its version wrote (--decode.refine_boundaries false "
        "--decode.bass_onset_frames 0 --decode.silence_db 0 --tta 0 decode as that version did; its windows "
        "overlapped by half, today's by a quarter)"
    ], notes
    # Those given are not named; given all, there is no note, in evaluate too.
    some = ["--decode.silence_db", "0", "--tta", "0"]
    assert chords.main(["predict", "--checkpoint", str(old), str(annotated_song), "-o", "-", *some]) == 0
    err = capsys.readouterr().err
    assert "today's defaults for decode.refine_boundaries, decode.bass_onset_frames, so" in err, err
    assert "silence_db" not in err and "--tta" not in err
    every = [*some, "--decode.refine_boundaries", "false", "--decode.bass_onset_frames", "0"]
    assert chords.main(["predict", "--checkpoint", str(old), str(annotated_song), "-o", "-", *every]) == 0
    assert "note:" not in capsys.readouterr().err
    # Every decoding flag but no --tta: its labels still come from today's test-time augmentation.
    decoding = ["--decode.silence_db", "0", *every[4:]]
    assert chords.main(["predict", "--checkpoint", str(old), str(annotated_song), "-o", "-", *decoding]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    assert notes == [
        f"note: {best} was written by an older audiotrain, without settings added since; today's defaults "
        "for test-time augmentation (--tta 2), so its labels may differ from those its version wrote "
        "(--tta 0 decode as that version did; its windows overlapped by half, today's by a quarter)"
    ], notes
    command = ["evaluate", "--checkpoint", str(old), "--data", str(annotated_song.parent), "--tta", "0"]
    assert chords.main(command) == 0
    assert f"note: {best} was written by an older audiotrain" in capsys.readouterr().err
    # Today's checkpoint, and a decoding given whole from Python, say nothing.
    assert chords.main(["predict", "--checkpoint", str(run_dir), str(annotated_song), "-o", "-"]) == 0
    assert "note:" not in capsys.readouterr().err
    from audiotrain.chords.decode import DecodeConfig
    from audiotrain.recipes.chords.predict import ChordPredictor

    assert ChordPredictor.from_checkpoint(old, decode=DecodeConfig()).decode_from_defaults == ()
    assert ChordPredictor.from_checkpoint(old, decode={"silence_db": 0}).decode_from_defaults == added[:2]


@pytest.mark.parametrize("chord_head", [False, True])
def test_an_older_checkpoints_note_names_the_chord_head_weight_only_for_a_model_with_a_chord_head(chord_head):
    # decode.chord_head_weight weighs the joint chord head: a model without one decodes alike whatever it is,
    # so the note on an older checkpoint lacking it does not send the user after that setting.
    from types import SimpleNamespace

    from audiotrain.recipes.chords.cli_predictor import older_decoding_note

    predictor = SimpleNamespace(  # (what the note reads of a `ChordPredictor`)
        decode_from_defaults=("chord_head_weight", "silence_db"),
        model=SimpleNamespace(config=SimpleNamespace(chord_head=chord_head)),
        tta_shifts=(-2, -1, 0, 1, 2),
        checkpoint="old/checkpoints/best",
    )
    note = older_decoding_note(predictor, given=(), tta_given=False)
    assert "decode.silence_db" in note
    assert ("decode.chord_head_weight" in note) is chord_head, note


def test_an_older_demo_run_evaluated_through_its_best_checkpoint_names_its_scores_and_its_sets_glob(
    run, tmp_path, annotated_song, capsys
):
    """evaluate --checkpoint RUN/checkpoints/best of a demo run whose config.json does not name its test set
    named RUN/checkpoints/best/evaluation/scores.json, which is never there, and the glob test-*, which also
    matched the test sets of other generator versions: other songs under the same names."""
    from audiotrain.datasets.chord_demo import generator_version

    argv, run_dir = run
    old = _copy(run_dir, tmp_path / "old")
    record = json.loads((old / "config.json").read_text())
    test_set = Path(record.pop("demo_test_set"))
    (old / "config.json").write_text(json.dumps(record))
    best = old / "checkpoints" / "best"
    scores = old / "evaluation" / "scores.json"
    assert scores.is_file()
    capsys.readouterr()
    assert chords.main(["evaluate", "--checkpoint", str(best)]) == 2
    err = capsys.readouterr().err
    pattern = f"test-v{generator_version('train')}-train-seed1000-n1-6s-*"
    assert f"one of {test_set.parent}/{pattern} (generator v{generator_version('train')}, as its" in err, err
    assert list(test_set.parent.glob(pattern)) == [test_set]
    assert f"holding its test songs (song_000; {scores} lists them)" in err
    assert "checkpoints/best/evaluation" not in err
    # Its checkpoints record no generator versions (before 2026-11-25): any version, and a word on them.
    for name in ("best", "last"):
        _edit_state(
            old / "checkpoints" / name,
            lambda state: state["module_state"][CHECKPOINT_KEY]["songs"]["demo"].pop("generators"),
        )
    assert chords.main(["evaluate", "--checkpoint", str(best)]) == 2
    err = capsys.readouterr().err
    assert f"one of {test_set.parent}/test-v*-train-seed1000-n1-6s-* (the one the audiotrain that" in err, err
    assert "a test-vN- set of another version holds other songs under the same names" in err
    # --test_songs_of the same checkpoint with a folder that is no demo set names the same file.
    command = ["evaluate", "--checkpoint", str(best), "--data", str(annotated_song.parent)]
    assert chords.main([*command, "--test_songs_of", str(best)]) == 2
    err = capsys.readouterr().err
    assert f"{scores} lists them" in err and "checkpoints/best/evaluation" not in err, err


# ---- --resume of an older checkpoint ---------------------------------------------------------------------


def test_a_demo_run_that_records_no_generator_versions_resumes_only_when_told(run, tmp_path, capsys):
    """Its songs were rendered again by a newer generator under the same names and the resume went on
    silently: the loss diverged from the run it continued. Refused before any song is rendered, with the
    flag that goes on."""
    argv, run_dir = run
    old = _copy(run_dir, tmp_path / "old")
    last = old / "checkpoints" / "last"
    _edit_state(last, lambda state: state["module_state"][CHECKPOINT_KEY]["songs"]["demo"].pop("generators"))
    empty_cache = tmp_path / "cache"
    capsys.readouterr()
    resume = [*argv, "--num_epochs", "3", "--run_dir", str(old), "--resume", str(last)]
    assert chords.main([*resume, "--data.cache_dir", str(empty_cache)]) == 2
    err = capsys.readouterr().err
    assert f"cannot resume from {last}: it records no demo generator versions" in err, err
    assert "generators train v" in err and "--resume_unrecorded_demo" in err and "--init_from" in err
    assert not empty_cache.exists()  # refused before the demo songs were rendered
    assert chords.main([*resume, "--resume_unrecorded_demo"]) == 0
    assert json.loads((old / "history.json").read_text())["epoch"] == [0, 1, 2]
    # It said nothing of what it did, and its checkpoints then record today's generators for the whole run.
    out = capsys.readouterr().err
    assert (
        f"note: resuming {last} on the demo songs as this version renders them (--resume_unrecorded_demo): it "
        "records no generator versions, so its first 2 epochs may have trained on other audio under the same "
        "names; its checkpoints from here on record generators train v"
    ) in out, out
    # Given where it changes nothing, it says so (not a flag accepted that silently does nothing).
    again = [
        *argv,
        "--num_epochs",
        "4",
        "--run_dir",
        str(old),
        "--resume",
        str(last),
        "--resume_unrecorded_demo",
    ]
    assert chords.main(again) == 0
    assert f"note: --resume_unrecorded_demo changes nothing here: {last} records the demo generator" in (
        capsys.readouterr().err
    )
    # Without --resume it was accepted silently too.
    assert chords.main([*argv, "--run_dir", str(tmp_path / "fresh"), "--resume_unrecorded_demo"]) == 0
    assert "note: --resume_unrecorded_demo changes nothing without --resume" in capsys.readouterr().err


def test_every_setting_a_resume_must_repeat_is_named_in_one_refusal(run, tmp_path, capsys):
    """An old run took three refusals, one setting at a time, and rendered the demo before the third."""
    argv, run_dir = run
    last = run_dir / "checkpoints" / "last"
    capsys.readouterr()
    again = [*argv, "--num_epochs", "3", "--run_dir", str(tmp_path / "r"), "--resume", str(last)]
    assert chords.main([*again, "--model.d_model", "64", "--data.demo_styles", "train"]) == 2
    err = capsys.readouterr().err
    assert f"cannot resume from {last}, for 2 reasons: (1) the checkpoint's model differs" in err, err
    assert (
        "model.d_model (32 there, 64 here)" in err
        and "(2) its demo songs were made with other settings" in err
    )
    assert not (tmp_path / "r").exists()


def test_an_old_demo_run_is_refused_once_for_its_settings_its_generators_and_its_epochs(
    run, tmp_path, capsys
):
    """The refusal for the generator versions an old demo run does not record came only once the settings'
    refusal had been answered, and the one for --num_epochs after that: three rounds of one command."""
    argv, run_dir = run
    old = _copy(run_dir, tmp_path / "old")
    last = old / "checkpoints" / "last"
    _edit_state(last, lambda state: state["module_state"][CHECKPOINT_KEY]["songs"]["demo"].pop("generators"))
    capsys.readouterr()
    # (FLAGS hold --num_epochs 2, the epochs it trained: none left)
    assert chords.main([*argv, "--data.demo_seed", "3", "--run_dir", str(old), "--resume", str(last)]) == 2
    err = capsys.readouterr().err
    assert (
        f"cannot resume from {last}, for 3 reasons: (1) its demo songs were made with other settings" in err
    )
    assert "(2) it records no demo generator versions" in err and UNRECORDED_DEMO_FLAG in err
    assert "(3) it has trained 2 epochs, and --num_epochs 2 leaves none to train" in err
    assert err.count("cannot resume") == 1, err


def test_a_demo_run_whose_generator_changed_is_not_told_a_resume_that_is_refused_again(
    run, tmp_path, monkeypatch, capsys
):
    """After an upgrade whose generator renders other demo songs under the run's names, the refusal said
    `Resume with --data.demo_seed 0` and `--config RUN/config.json --resume LAST resumes with them`; the user
    ran that and was refused again, for the generators, which no flag or file brings back."""
    from audiotrain.recipes.chords import song_record

    argv, run_dir = run
    last = run_dir / "checkpoints" / "last"
    upgraded = song_record.generator_version
    monkeypatch.setattr(song_record, "generator_version", lambda style: upgraded(style) + (style == "train"))
    other = tmp_path / "r"
    capsys.readouterr()
    again = ["--num_epochs", "3", "--run_dir", str(other), "--resume", str(last)]
    assert chords.main([*argv, "--data.demo_seed", "3", *again]) == 2
    err = capsys.readouterr().err
    assert "data.demo_seed (0 there, 3 here)" in err and "the demo generator versions" in err, err
    assert "Resume with" not in err and "resumes with them" not in err, err
    assert f"Start a new run folder with --init_from {last} in place of --resume" in err, err
    assert chords.main(["--config", str(run_dir / "config.json"), *again]) == 2
    err = capsys.readouterr().err
    assert "the demo generator versions" in err and "resumes with them" not in err, err
    assert not other.exists()


def test_an_older_runs_relative_data_folder_is_found_where_its_run_started(tmp_path, monkeypatch, capsys):
    """An older audiotrain recorded `--data songs` as typed: `train --config proj/runs/old/config.json`
    from another folder said only "data.data_dir .../elsewhere/songs (in ...config.json): no such folder",
    where the songs were in proj/, the folder the run started in (its --run_dir runs/old)."""
    (tmp_path / "proj" / "songs").mkdir(parents=True)
    record = tmp_path / "proj" / "runs" / "old" / "config.json"
    record.parent.mkdir(parents=True)
    argv = ["chords", "train", "--data", "songs", "--run_dir", "runs/old"]
    old = {"config": {"data": {"data_dir": "songs"}}, "versions": {"audiotrain": "0.1.0"}, "command": argv}
    record.write_text(json.dumps(old))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    monkeypatch.setattr(chords, "run_training", lambda *a, **k: pytest.fail("trained without its songs"))
    assert chords.main(["train", "--config", str(record)]) == 2
    err = capsys.readouterr().err
    assert "no such folder" in err and f"pass --data {tmp_path / 'proj' / 'songs'}" in err, err


def test_resuming_a_checkpoint_of_the_older_val_loss_says_the_best_and_early_stopping_compare_both(
    run, tmp_path, capsys
):
    """A build before 2026-11-30 weighed each validation batch's head losses by all its frames: resumed here,
    training went on exactly but every val_loss was computed the new way (15.58 where the old build gave
    15.49, in batches of 1), and the best checkpoint and early stopping compared the two without a word."""
    from audiotrain.recipes.chords.task import VAL_LOSS_KEY

    argv, run_dir = run
    old = _copy(run_dir, tmp_path / "old")
    last = old / "checkpoints" / "last"
    assert json.loads((last / ckpt.STATE_FILE).read_text())["module_state"][CHECKPOINT_KEY][VAL_LOSS_KEY]
    capsys.readouterr()
    again = [*argv, "--num_epochs", "3", "--resume", str(last)]
    assert chords.main([*again, "--run_dir", str(tmp_path / "today")]) == 0
    assert "does not record how its run computed val_loss" not in capsys.readouterr().err
    _edit_state(last, lambda state: state["module_state"][CHECKPOINT_KEY].pop(VAL_LOSS_KEY))
    assert chords.main([*again, "--run_dir", str(tmp_path / "older")]) == 0
    err = capsys.readouterr().err
    assert f"note: {last} does not record how its run computed val_loss: a build before 2026-11-30" in err
    assert f"start a new run folder with --init_from {last}" in err, err


def _checkpoint(folder: Path, **state) -> Path:
    """A checkpoint folder with `state` in its trainer_state.json (enough for what a resume reads first)."""
    import mlx.core as mx

    folder.mkdir(parents=True)
    for name in (ckpt.MODEL_FILE, ckpt.OPTIMIZER_FILE, ckpt.STEP_STATE_FILE):
        mx.save_safetensors(str(folder / name), {"x": mx.zeros(1)})
    progress = dict.fromkeys(("epoch", "batch_in_epoch", "global_step", "total_batches", "micro_batches"), 1)
    payload = {"format": ckpt.FORMAT, "format_version": 2, "progress": progress, "random": {"mlx": [0, 1]}}
    (folder / ckpt.STATE_FILE).write_text(json.dumps({**payload, **state}))
    return folder


@pytest.mark.parametrize(
    "state, recorded",
    [
        ({"global_batch": {"world_size": 1, "batch_size": 8}}, 1),  # --train.processes 1, this version
        ({"run_config": {"train": {"epochs": 3}}}, 1),  # before the CLAP recipe had processes
        ({"run_config": {"train": {"processes": 2}}}, 2),
        ({"run_config": {"train": {"processes": 0}}}, None),  # one per core, and no record of how many
    ],
)
def test_a_clap_resume_keeps_the_processes_its_checkpoint_was_trained_in(
    state, recorded, tmp_path, monkeypatch, capsys
):
    """A one-process CLAP checkpoint resumed in two processes (the default, one per core) and diverged; the
    README says a resumed run keeps its count."""
    checkpoint = _checkpoint(tmp_path / "run" / "checkpoints" / "last", **state)
    assert _run.checkpoint_processes(checkpoint, "train.processes") == recorded
    seen = {}

    def plan(requested, batches, flag, resumed_processes=None, batch_flags=None):
        seen["resumed"] = resumed_processes
        return LocalPlan(resumed_processes or 2)

    monkeypatch.setattr(clap, "plan_local_processes", plan)
    monkeypatch.setattr(clap, "run_local_job", _stop)
    monkeypatch.setattr(clap, "run", _stop)
    capsys.readouterr()
    with pytest.raises(Stopped):
        clap.main(["--demo.clips", "8", "--resume", str(checkpoint), "--out", str(tmp_path / "out")])
    assert seen["resumed"] == recorded
    out = capsys.readouterr().err  # (a note)
    if recorded is None:
        assert "does not record how many processes trained it" in out and "--train.processes N" in out
    else:
        plural = "es" * (recorded > 1)
        assert f"resuming in {recorded} process{plural}, as {checkpoint} was trained" in out, out


@pytest.mark.parametrize(
    "flags, said",
    [
        # Resumed without its launcher: the recipe's own 2 processes split a batch of 4 (the recorded one,
        # per process under the launcher), where the note said it resumed "as it was trained".
        (
            [],
            "with a global batch of 8 (2 processes x 4); this resume trains with 4 in 2, so it does not "
            "continue that run exactly. Resume it as it was trained (under a launcher the batch size is per "
            "process), or pass --train.batch_size 8",
        ),
        (
            ["--train.processes", "1"],
            "this resume trains with 4 in 1, so it does not continue that run "
            "exactly. Resume it as it was trained (under a launcher the batch size is per process), or pass "
            "--train.batch_size 8 --train.processes 2",
        ),
        # The same global batch in one process: said so, not "the batch is split otherwise".
        (
            ["--train.processes", "1", "--train.batch_size", "8"],
            "was trained in 2 processes; this resume trains in 1 (--train.processes 1), so it does not "
            "continue that run exactly (the same global batch of 8, split in 1 process instead of 2); leave "
            "--train.processes out to resume in 2",
        ),
    ],
)
def test_a_launcher_trained_clap_checkpoint_resumed_without_it_says_what_changes(
    flags, said, tmp_path, monkeypatch, capsys
):
    """A CLAP run trained under ``audiotrain launch -n 2`` (--train.batch_size 4 per process, 8 in all)
    resumed without the launcher."""
    state = {"global_batch": {"world_size": 2, "batch_size": 4}, "run_config": {"train": {"batch_size": 4}}}
    checkpoint = _checkpoint(tmp_path / "run" / "checkpoints" / "last", **state)
    monkeypatch.setattr(
        clap, "plan_local_processes", lambda n, b, f, resumed_processes, **_: LocalPlan(n or 2)
    )
    monkeypatch.setattr(clap, "run_local_job", _stop)
    monkeypatch.setattr(clap, "run", _stop)
    monkeypatch.setattr(clap, "training_on_cpu", lambda: True)
    capsys.readouterr()
    with pytest.raises(Stopped):
        clap.main(["--demo.clips", "8", "--resume", str(checkpoint), "--out", str(tmp_path / "out"), *flags])
    out = capsys.readouterr().err
    assert said in out, out


def test_a_resume_in_another_process_count_than_asked_says_it_does_not_continue_exactly(tmp_path):
    checkpoint = _checkpoint(tmp_path / "c", global_batch={"world_size": 1, "batch_size": 4})
    note = _run.resume_processes_note(checkpoint, 1, 2, 2, "--processes")
    assert "was trained in 1 process; this resume trains in 2 (--processes 2)" in note
    note = _run.resume_processes_note(checkpoint, 2, 1, 1, "--processes")
    assert note.endswith("; leave --processes out to resume in 2")
    # On a GPU leaving it out would be refused (local processes are for the CPU): not suggested there.
    note = _run.resume_processes_note(checkpoint, 2, 1, 1, "--processes", on_cpu=False)
    assert "was trained in 2 processes; this resume trains in 1 (--processes 1)" in note
    assert "leave --processes out" not in note
    assert _run.resume_processes_note(checkpoint, 1, 1, 1, "--processes") is None  # asked for, and the same


#: A tiny chord model as the first checkpoint format recorded it (commit 9713e49): no bass branch, bass view
#: or chord head, and no key for them; the features without tuning correction or bass view.
FORMAT_1_MODEL = {
    "n_bins": 216, "context_frames": 2, "d_model": 8, "n_layers": 1, "n_heads": 2, "ff_dim": 16,
    "dropout": 0.1, "attention": "relu2", "num_chord_types": 32,
}  # fmt: skip
FORMAT_1_FEATURES = {
    "sr": 22050, "hop_length": 2048, "n_bins": 216, "bins_per_octave": 36, "fmin": 32.70319566257483,
    "max_pitch_shift": 6, "log_gain": 100.0,
}  # fmt: skip
FORMAT_1_DECODE = {"method": "viterbi", "self_transition": 0.95, "median_frames": 9, "unknown_chords": False}


def _format_1_run(run_dir: Path) -> Path:
    """A run folder as the first checkpoint format's chord recipe left it (`git show 9713e49`): config.json,
    and checkpoints/best and last whose trainer_state.json holds its progress and random key at the top (format
    2 moved them under "progress" and "random") beside the chord record predict reads."""
    from audiotrain.chords.vocabulary import vocabulary_dict
    from audiotrain.models.chord_model import ChordModelConfig, ChordRecognitionModel

    import mlx.core as mx

    mx.random.seed(0)
    model = ChordRecognitionModel(ChordModelConfig.from_dict(FORMAT_1_MODEL))
    weights = {f"model.{k}": v for k, v in ckpt.flat(model.parameters()).items()}  # (the task's `model`)
    songs = {"train": ["song_001", "song_002"], "val": ["song_003"], "test": ["song_000"]}
    record = {
        "model_config": FORMAT_1_MODEL,
        "features": FORMAT_1_FEATURES,
        "vocabulary": vocabulary_dict(),
        "decode": FORMAT_1_DECODE,
        "window_frames": 32,
        "songs": {part: len(names) for part, names in songs.items()},
    }
    checkpoints = run_dir / "checkpoints"
    for name in ("best", "last"):
        folder = checkpoints / name
        folder.mkdir(parents=True)
        mx.save_safetensors(str(folder / ckpt.MODEL_FILE), weights)
        mx.save_safetensors(str(folder / ckpt.OPTIMIZER_FILE), {"step": mx.array(2)})
        mx.save_safetensors(str(folder / ckpt.STEP_STATE_FILE), {"step": mx.array(2)})
        best = {"best_model_path": str(checkpoints / "best"), "dirpath": str(checkpoints)}
        state = {
            "format": ckpt.FORMAT, "format_version": 1, "epoch": 1, "batch_in_epoch": 0, "global_step": 2,
            "total_train_batches": 2, "micro_batches_in_window": 0, "rng": [1826722230, 472279797],
            "callbacks": {"ModelCheckpoint{'monitor': 'val_loss', 'filename': 'best'}": best}, "loggers": [],
            "history": [], "config": {"module": "ChordTask"}, "versions": {"audiotrain": "0.1.0"},
            "module_state": {CHECKPOINT_KEY: record},
        }  # fmt: skip
        (folder / ckpt.STATE_FILE).write_text(json.dumps(state, indent=1))
    config = {
        "learning_rate": 0.002, "batch_size": 4, "num_epochs": 1, "checkpoint_dir": "checkpoints", "seed": 0,
        "data": {"data_dir": None, "demo_songs": 4, "demo_test_songs": 1, "window_frames": 32},
        "features": FORMAT_1_FEATURES, "model": FORMAT_1_MODEL, "decode": FORMAT_1_DECODE,
    }  # fmt: skip
    record = {"config": config, "versions": {"audiotrain": "0.1.0"}, "command": ["chords.py"], "songs": songs}
    (run_dir / "config.json").write_text(json.dumps(record, indent=1))
    return run_dir


@pytest.fixture
def annotated_song(tmp_path) -> Path:
    """A folder with one annotated song: three seconds of a C major triad, and its .lab."""
    import numpy as np
    import soundfile as sf

    sr = 22050
    t = np.arange(3 * sr) / sr
    folder = tmp_path / "songs"
    folder.mkdir()
    sf.write(folder / "song.wav", sum(0.2 * np.sin(2 * np.pi * f * t) for f in (261.63, 329.63, 392.0)), sr)
    (folder / "song.lab").write_text("0.0 3.0 C:maj\n")
    return folder / "song.wav"


def test_a_run_of_the_first_checkpoint_format_is_transcribed_exported_and_fine_tuned_from(
    tmp_path, annotated_song, capsys
):
    """A run trained four days earlier (checkpoint format 1) was refused by predict, evaluate, export and
    --init_from, though only the trainer state's layout changed: its weights load with its settings read as
    that version ran (no bass view, no chord head)."""
    from audiotrain.recipes.chords.init_from import check_init_from, with_checkpoint_model

    old = _format_1_run(tmp_path / "old1")
    best = old / "checkpoints" / "best"
    lab = tmp_path / "old.lab"
    assert (
        chords.main(["predict", "--checkpoint", str(old), str(annotated_song), "-o", str(lab), "--tta", "0"])
        == 0
    )
    assert lab.read_text().strip() and f"using {best} (after 1 epoch, 2 steps)" in capsys.readouterr().err
    exported = tmp_path / "exported"
    assert chords.main(["export", "--checkpoint", str(old), "--out", str(exported)]) == 0
    assert ckpt.read_state(exported)["format_version"] == ckpt.FORMAT_VERSION  # (the way to migrate it)
    config = with_checkpoint_model(TrainingConfig(), old)  # --init_from: its model and features
    assert (config.model.bass_bins, config.model.chord_head, config.features.bass_view_bins) == (0, False, 0)
    folder, started = check_init_from(config, old, tmp_path / "new_run")
    assert folder == best and started["epoch"] == 1 and started["global_step"] == 2


def test_the_flags_an_older_checkpoints_note_names_decode_it_as_its_version_did(
    tmp_path, annotated_song, capsys
):
    """A checkpoint from before the joint (chord, bass) decoding (2026-11-23) was noted as decoded with
    today's joint_bass, without the value its version decoded with ("the --decode.* flags set them"): with
    the flags the note gave, its labels still differed from its version's on every song of an upgrade sweep.
    The note names --decode.joint_bass false, and given every flag it names, predict has nothing to note."""
    old = _format_1_run(tmp_path / "old1")
    capsys.readouterr()
    assert chords.main(["predict", "--checkpoint", str(old), str(annotated_song), "-o", "-"]) == 0
    (note,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    flags = note.split("its version wrote (")[1].split(" decode as that version did")[0].split()
    assert "--decode.joint_bass" in flags, note
    assert chords.main(["predict", "--checkpoint", str(old), str(annotated_song), "-o", "-", *flags]) == 0
    assert "note:" not in capsys.readouterr().err


def test_a_data_folder_an_older_run_recorded_relative_is_not_called_gone_from_another_folder(
    tmp_path, monkeypatch, capsys
):
    """A run of 2026-11-22 recorded `--data songs` as typed: `evaluate --checkpoint RUN` without --data from
    another folder said the run's data folder "is gone", though it was where the run had started. It says that
    the relative path is read from the folder the command runs in."""
    old = _format_1_run(tmp_path / "old1")
    record = json.loads((old / "config.json").read_text())
    record["config"]["data"]["data_dir"] = "songs"
    (old / "config.json").write_text(json.dumps(record))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert chords.main(["evaluate", "--checkpoint", str(old)]) == 2
    err = capsys.readouterr().err
    assert f"the run's data folder, songs (as {old / 'config.json'} records it), is not in " in err, err
    assert "the folder the run started in" in err and "is gone" not in err, err


@pytest.mark.slow  # (about 5 s on 2 cores, most of it the evaluation's first imports)
def test_a_run_of_the_first_checkpoint_format_is_scored(tmp_path, annotated_song, capsys):
    """evaluate --checkpoint RUN of a format-1 run: "re-score my old run with today's evaluation"."""
    old = _format_1_run(tmp_path / "old1")
    command = ["evaluate", "--checkpoint", str(old), "--data", str(annotated_song.parent), "--tta", "0"]
    assert chords.main(command) == 0
    assert "1 song, mir_eval.chord scores" in capsys.readouterr().out


def test_a_run_of_the_first_format_loads_from_python_its_config_read_as_that_version_ran(
    tmp_path, annotated_song
):
    """`from_config(RUN/config.json, weights)` built today's model (bass branch, chord head) for the old weights
    and failed with a raw traceback: it now reads the record as --config does."""
    from audiotrain.recipes.chords.predict import ChordPredictor
    from audiotrain.recipes.chords.task import ChordTask

    old = _format_1_run(tmp_path / "old1")
    best = old / "checkpoints" / "best"
    from_config = ChordPredictor.from_config(old / "config.json", best / ckpt.MODEL_FILE, tta_shifts=(0,))
    from_checkpoint = ChordPredictor.from_checkpoint(old, tta_shifts=(0,))
    assert from_config.model.config == from_checkpoint.model.config
    assert from_config.transcribe(annotated_song) == from_checkpoint.transcribe(annotated_song)
    assert ChordTask.load_from_checkpoint(old).model.config == from_checkpoint.model.config


def test_a_resume_of_the_first_format_is_refused_naming_what_still_works(tmp_path, capsys):
    old = _format_1_run(tmp_path / "old1")
    last = old / "checkpoints" / "last"
    argv = [*FLAGS, "--num_epochs", "3", "--run_dir", str(old), "--resume", str(last)]
    assert chords.main(argv) == 2
    err = capsys.readouterr().err
    assert f"{last} was written by an older audiotrain (checkpoint format 1; this one reads format 2)" in err
    assert "cannot resume training from it" in err and f"--init_from {last}" in err, err
    assert "predict and evaluate --checkpoint, export" in err and "load_weights" not in err
    with pytest.raises(ckpt.OlderFormatError, match="cannot resume training"):  # the Trainer API's words
        ckpt.read_state(last)


# ---- going on with a finished run ------------------------------------------------------------------------


def test_going_on_with_other_settings_says_how_the_rate_changes_and_keeps_the_earlier_ones(
    run, tmp_path, capsys
):
    """A larger --num_epochs (the documented way to go on) or a new --learning_rate rebuilt the schedule
    without a word (the rate jumped 2.5x, 25x), and config.json was rewritten as if the whole run had been
    trained so."""
    argv, run_dir = run
    run_dir = _copy(run_dir, tmp_path / "run")
    last = run_dir / "checkpoints" / "last"
    capsys.readouterr()
    resume = [*argv, "--num_epochs", "3", "--learning_rate", "0.004", "--run_dir", str(run_dir), "--resume"]
    assert chords.main([*resume, str(last)]) == 0
    out = capsys.readouterr().err  # (the run's diagnostics)
    line = next(line for line in out.splitlines() if "with settings changed" in line)
    assert (
        f"resuming {last} with settings changed since its run: learning_rate 0.002 -> 0.004, num_epochs 2 -> 3"
        in line
    )
    assert "the learning-rate schedule is rebuilt for them (cosine, 3 epochs of 2 steps, peak 0.004)" in line
    # Halfway down the 2-epoch cosine (1 epoch of warmup) at its last step; halfway down the 3-epoch one next.
    assert "the rate goes from 0.00101 at its last step to 0.00202 at the next" in line
    assert "trained to epoch 3: 2 steps after resuming at epoch 2 (step 4)" in out
    record = json.loads((run_dir / "config.json").read_text())
    assert record["config"]["num_epochs"] == 3
    assert record["earlier"] == [
        {
            "until_epoch": 2,
            "checkpoint": str(last.resolve()),
            "settings": {"learning_rate": 0.002, "num_epochs": 2},
        }
    ]
    # Going on again keeps that record, and adds the next change.
    assert (
        chords.main(
            [
                *argv,
                "--num_epochs",
                "4",
                "--learning_rate",
                "0.004",
                "--run_dir",
                str(run_dir),
                "--resume",
                str(last),
            ]
        )
        == 0
    )
    earlier = json.loads((run_dir / "config.json").read_text())["earlier"]
    assert [entry["until_epoch"] for entry in earlier] == [2, 3]
    assert earlier[1]["settings"] == {"num_epochs": 3}


# ---- create_trainer runs of an older build -------------------------------------------------------------

#: The settings create_trainer's config.yaml gained on 2026-11-26 (optimizer.bias_correction among them):
#: a run record of before has none of them, nor the build entries.
_ADDED_SINCE = {"optimizer": ("momentum", "bias_correction"), "training": ("eval_strategy", "eval_steps")}


def _as_older_declarative_record(settings: dict) -> None:
    """A create_trainer record (config.yaml's or a checkpoint's run_config) edited into what 40c9761 wrote."""
    for section, names in _ADDED_SINCE.items():
        for name in names:
            settings[section].pop(name)
    for name in ("kaggle", "versions", "builds"):
        settings.pop(name, None)


def _regression_run(run_dir: Path, epochs: int, config="quick_test", resume=False, **overrides):
    """A tiny regression under create_trainer (quick_test: AdamW, 4 batches an epoch): its train losses."""
    import audiotrain

    import mlx.core as mx
    import mlx.nn as nn
    import numpy as np

    class Regression(audiotrain.TrainModule):
        def __init__(self):
            super().__init__()
            self.l1, self.l2 = nn.Linear(8, 16), nn.Linear(16, 1)

        def __call__(self, x):
            return self.l2(nn.relu(self.l1(x)))

        def compute_loss(self, batch):
            return mx.mean((self(batch["x"]) - batch["y"]) ** 2), {}

    def data(n, seed):
        x = np.random.default_rng(seed).normal(size=(n, 8)).astype(np.float32)
        y = x @ np.arange(8, dtype=np.float32)[:, None] * 0.1
        return audiotrain.DataLoader([{"x": a, "y": b} for a, b in zip(x, y)], batch_size=8, shuffle=True)

    audiotrain.seed_everything(42)
    module = Regression()
    trainer = audiotrain.create_trainer(
        module, config=config, run_dir=str(run_dir), num_epochs=epochs, batch_size=8, **overrides
    )
    ckpt_path = "last" if resume else None
    return trainer.train(data(64, 0), data(16, 1), ckpt_path=ckpt_path).history["train_loss"]


def _older_declarative_run(tmp_path: Path) -> Path:
    """A 2-epoch create_trainer run as a build before optimizer.bias_correction left it (uncorrected Adam)."""
    import yaml

    old = tmp_path / "old"
    _regression_run(old, 2, bias_correction=False)
    record = yaml.safe_load((old / "config.yaml").read_text())
    _as_older_declarative_record(record)
    (old / "config.yaml").write_text(yaml.safe_dump(record, sort_keys=False))
    for checkpoint in (old / "checkpoints").iterdir():

        def edit(state):
            _as_older_declarative_record(state["run_config"])
            state["versions"]["audiotrain"] = "0.1.0"

        _edit_state(checkpoint, edit)
    return old


def test_an_older_declarative_run_resumes_with_the_optimizer_it_trained_with(tmp_path, capsys):
    """A run of before optimizer.bias_correction (MLX's uncorrected Adam) resumed with today's default,
    corrected: from its third epoch it trained otherwise than the run it continued, and its config.yaml said
    bias_correction: true for the whole run. Resumed from its config.yaml or from a preset, it goes on as the
    uninterrupted run of that build, says so, and its config.yaml keeps both builds that trained it."""
    from audiotrain._build import build_version

    import yaml

    straight = _regression_run(tmp_path / "straight", 4, bias_correction=False)
    for how in ("config.yaml", "preset"):
        old = _older_declarative_run(tmp_path / how)
        capsys.readouterr()
        config = str(old / "config.yaml") if how == "config.yaml" else "quick_test"
        assert _regression_run(old, 4, config=config, resume=True) == straight
        err = capsys.readouterr().err
        assert "was written by an older audiotrain" in err and "optimizer.bias_correction false" in err, err
        record = yaml.safe_load((old / "config.yaml").read_text())
        assert record["optimizer"]["bias_correction"] is False
        assert record["builds"] == ["0.1.0", build_version()]
        state = json.loads((old / "checkpoints" / "last" / ckpt.STATE_FILE).read_text())
        assert state["run_config"]["optimizer"]["bias_correction"] is False


def test_an_older_declarative_record_replays_as_it_ran_and_a_new_config_keeps_todays_default(
    tmp_path, capsys
):
    """get_trainer_config("RUN/config.yaml") of such a run filled today's default, so a repeat trained
    otherwise; a config a user writes without the key keeps today's (corrected) Adam."""
    import audiotrain

    old = _older_declarative_run(tmp_path)
    for record in (old / "config.yaml", old / "checkpoints" / "last" / ckpt.STATE_FILE):
        capsys.readouterr()
        assert audiotrain.get_trainer_config(record).optimizer.bias_correction is False
        err = capsys.readouterr().err
        assert f"note: {record} was written by an older audiotrain" in err
        assert (
            "read as that version ran: optimizer.bias_correction false" in err
            and "bias_correction=True" in err
        )
        assert audiotrain.get_trainer_config(record, bias_correction=True).optimizer.bias_correction is True
        assert "read as that version ran" not in capsys.readouterr().err
    mine = tmp_path / "mine.yaml"
    mine.write_text("optimizer:\n  type: adam\n  learning_rate: 0.01\n")
    assert audiotrain.get_trainer_config(mine).optimizer.bias_correction is True
    assert "note" not in capsys.readouterr().err


def test_todays_record_with_the_bias_correction_line_deleted_is_no_older_record(tmp_path, capsys):
    """Today's config.yaml copied with its ``bias_correction:`` line deleted was called "written by an older
    audiotrain" and replayed with uncorrected Adam, though its versions and builds name a build that has the
    setting (config.yaml records them only since it had all of today's). The deletion is the user's: today's
    default, as in any settings file, without that note."""
    import audiotrain

    import yaml

    _regression_run(tmp_path / "new", 1)
    record = yaml.safe_load((tmp_path / "new" / "config.yaml").read_text())
    del record["optimizer"]["bias_correction"]
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(record, sort_keys=False))
    capsys.readouterr()
    assert audiotrain.get_trainer_config(edited).optimizer.bias_correction is True
    assert "older audiotrain" not in capsys.readouterr().err
    _regression_run(tmp_path / "again", 1, config=str(edited))
    assert "older audiotrain" not in capsys.readouterr().err
    assert yaml.safe_load((tmp_path / "again" / "config.yaml").read_text())["optimizer"]["bias_correction"]
    # Without the build entries, it reads as a record of before them, as it ran (uncorrected).
    for name in ("versions", "builds"):
        record.pop(name)
    edited.write_text(yaml.safe_dump(record, sort_keys=False))
    assert audiotrain.get_trainer_config(edited).optimizer.bias_correction is False
    assert "written by an older audiotrain" in capsys.readouterr().err


def test_a_declarative_run_records_the_builds_that_trained_it(tmp_path):
    """config.yaml recorded no build (a recipe's config.json does); a run resumed by another build kept
    only its settings. It repeats as before (the build entries are no settings); a resume by the same build
    adds no second entry."""
    import audiotrain
    from audiotrain._build import build_version

    import yaml

    run_dir = tmp_path / "run"
    _regression_run(run_dir, 1)
    record = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert record["versions"]["audiotrain"] == build_version() and record["builds"] == [build_version()]
    _regression_run(run_dir, 2, config=str(run_dir / "config.yaml"), resume=True)
    record = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert record["builds"] == [build_version()]  # resumed by the build that began it
    record["builds"] = ["0.1.0+gearlier"]  # (as if an earlier build had trained it)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(record, sort_keys=False))
    _regression_run(run_dir, 3, config=str(run_dir / "config.yaml"), resume=True)
    again = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert again["builds"] == ["0.1.0+gearlier", build_version()]
    assert audiotrain.get_trainer_config(run_dir / "config.yaml").training.num_epochs == 3


# ---- the demo generator v9 of before it settled ----------------------------------------------------------


def test_a_demo_run_of_v9_before_it_settled_resumes_only_when_told(run, tmp_path, capsys):
    """v9 of the training style changed twice after it came (11-25 23:57 to 11-26 00:40) without a new
    number: a run of those builds records train v9 and resumed on other songs under the same names, without
    a word. Its checkpoints have no features.bass_view_bins (it came at 03:29): refused as unrecorded."""
    argv, run_dir = run
    old = _copy(run_dir, tmp_path / "old")
    last = old / "checkpoints" / "last"
    recorded = json.loads((last / ckpt.STATE_FILE).read_text())
    assert recorded["module_state"][CHECKPOINT_KEY]["songs"]["demo"]["generators"]["train"] == 9
    _edit_state(last, lambda state: state["run_config"]["features"].pop("bass_view_bins"))
    capsys.readouterr()
    resume = [*argv, "--num_epochs", "3", "--run_dir", str(old), "--resume", str(last)]
    assert chords.main(resume) == 2
    err = capsys.readouterr().err
    assert (
        f"cannot resume from {last}: it records demo generator train v9 but no features.bass_view_bins" in err
    )
    assert "--resume_unrecorded_demo" in err and "--init_from" in err, err
    assert chords.main([*resume, "--resume_unrecorded_demo"]) == 0
    assert "it was written before v9 settled, so its first 2 epochs may have trained on other audio" in (
        capsys.readouterr().err
    )


# ---- a CLAP checkpoint of the first format -----------------------------------------------------------------


def _as_format_1(checkpoint: Path) -> None:
    """Today's trainer state laid out as the first checkpoint format (2026-11-21): progress and the random
    key at the top."""

    def edit(state):
        progress, random = state.pop("progress"), state.pop("random")
        state.update(
            format_version=1,
            epoch=progress["epoch"],
            batch_in_epoch=progress["batch_in_epoch"],
            global_step=progress["global_step"],
            total_train_batches=progress["total_batches"],
            micro_batches_in_window=progress["micro_batches"],
            rng=random["mlx"],
        )

    _edit_state(checkpoint, edit)


def test_a_clap_checkpoint_of_the_first_format_exports(tmp_path, capsys):
    """`clap export` of an 11-21 checkpoint said "this version cannot export it" and named no way on, though
    its weights are today's (the chord recipe exports such checkpoints)."""
    from audiotrain.models.clap import load_pretrained

    import numpy as np
    from safetensors.numpy import load_file

    run_dir = tmp_path / "run"
    argv = ["--out", str(run_dir), "--demo.folder", str(tmp_path / "cache"), "--demo.clips", "8",
            "--demo.width", "16", "--demo.vocab_size", "120", "--dataset.max_tokens", "16",
            "--dataset.num_workers", "0", "--train.epochs", "1", "--train.batch_size", "2",
            "--train.compile", "false", "--train.progress_bar", "false",
            "--train.processes", "1"]  # fmt: skip
    clap.run(clap.parse_config(argv), argv)
    (best,) = [p for p in (run_dir / "checkpoints").iterdir() if p.name.startswith("epoch=0")]
    _as_format_1(best)
    with pytest.raises(ckpt.OlderFormatError):
        ckpt.read_state(best)  # (a resume of it is still refused)
    capsys.readouterr()
    assert clap.export_main(["--checkpoint", str(best), "--out", str(tmp_path / "exported")]) == 0
    assert f"exported {best}" in capsys.readouterr().out
    mine, theirs = (
        load_file(str(tmp_path / "exported" / "model.safetensors")),
        load_file(str(run_dir / "hf_model" / "model.safetensors")),
    )
    assert sorted(mine) == sorted(theirs) and all(np.array_equal(mine[k], theirs[k]) for k in mine)
    load_pretrained(tmp_path / "exported")


def test_a_first_format_checkpoint_of_ones_own_module_is_validated_tested_and_predicted_with(tmp_path):
    """Trainer.validate / test / predict(ckpt_path=) of a TrainModule checkpoint written a week before (format
    1) raised "it cannot resume training" though they resume nothing, and load_from_checkpoint loaded the same
    weights: as Lightning's, they score its weights; fit(ckpt_path=) of it is still refused."""
    from audiotrain import Trainer

    import mlx.core as mx
    import numpy as np
    from tasks import TinyClassifier, make_batches

    def trainer():
        return Trainer(max_epochs=1, default_root_dir=tmp_path, enable_progress_bar=False, compile=False)

    mx.random.seed(0)
    module = TinyClassifier()
    trainer().fit(module, make_batches())
    last = tmp_path / "checkpoints" / "last"
    _as_format_1(last)
    batches = make_batches(32)
    assert trainer().validate(TinyClassifier(), batches, ckpt_path=last) == trainer().validate(
        module, batches
    )
    assert trainer().test(TinyClassifier(), batches, ckpt_path=last) == trainer().test(module, batches)
    inputs = [x for x, _ in batches]
    predicted = trainer().predict(TinyClassifier(), inputs, ckpt_path=last)
    assert all(
        np.array_equal(np.array(p), np.array(module(x))) for p, x in zip(predicted, inputs, strict=True)
    )
    with pytest.raises(ckpt.OlderFormatError, match="cannot resume training"):
        Trainer(max_epochs=2, default_root_dir=tmp_path / "again", enable_progress_bar=False).fit(
            TinyClassifier(), make_batches(), ckpt_path=last
        )


def test_a_resumed_recipe_run_keeps_the_builds_that_trained_it(run, tmp_path):
    """After a resume by another build, config.json's versions named only the last one: which build trained
    the earlier epochs was lost. Its builds list them, oldest first (a record of before: its versions')."""
    from audiotrain._build import build_version

    argv, run_dir = run
    old = _copy(run_dir, tmp_path / "old")
    record = json.loads((old / "config.json").read_text())
    assert record["builds"] == [build_version()]
    del record["builds"]
    record["versions"]["audiotrain"] = "0.1.0"
    (old / "config.json").write_text(json.dumps(record))
    last = old / "checkpoints" / "last"
    assert chords.main([*argv, "--num_epochs", "3", "--run_dir", str(old), "--resume", str(last)]) == 0
    assert json.loads((old / "config.json").read_text())["builds"] == ["0.1.0", build_version()]


def test_a_first_format_checkpoint_missing_a_count_is_refused_naming_it_where_its_model_is_read(tmp_path):
    """Its counters are checked as today's are: a hand-edited file fails by the field's name, not later with
    a TypeError of whatever used the count (a fine-tune from it, a chord record of its step)."""
    old = _checkpoint(tmp_path / "old", format_version=1, epoch=1, batch_in_epoch=0, rng=[0, 1])
    with pytest.raises(ckpt.CheckpointError, match=r"'progress.global_step' must be an int >= 0, got None"):
        ckpt.read_model_state(old)
    _edit_state(old, lambda state: state.update(global_step=2))
    assert ckpt.read_model_state(old)["progress"]["global_step"] == 2


def test_exporting_a_checkpoint_older_than_export_reads_says_so_in_exports_words(tmp_path, capsys):
    """The Trainer's refusal of such a checkpoint speaks of resuming ('it cannot resume training'): `clap
    export` says in its own words which formats it exports and where the run's export is."""
    old = _checkpoint(tmp_path / "old", format_version=0)
    assert clap.export_main(["--checkpoint", str(old), "--out", str(tmp_path / "exported")]) == 2
    err = capsys.readouterr().err
    assert f"{old} was written by an older audiotrain (checkpoint format 0; this one exports formats " in err
    assert "this version cannot export it. The run's hf_model/ folder holds" in err and "resume" not in err
    assert not (tmp_path / "exported").exists()
