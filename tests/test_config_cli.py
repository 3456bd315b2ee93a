"""Dataclass configs as command-line flags and YAML/JSON files (audiotrain.recipes.config_cli)."""

import argparse
import dataclasses
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from audiotrain.recipes.config_cli import (
    MAX_EPOCHS,
    SettingError,
    SettingsParser,
    add_dataclass_arguments,
    apply_arguments,
    check_setting,
    load_config_data,
    load_config_file,
    merge_config,
    without_overwrite,
)

import pytest
from child_processes import child_env


@dataclass
class Inner:
    width: int = field(default=8, metadata={"help": "layer width"})
    kind: str = field(default="a", metadata={"help": "which kind", "choices": ("a", "b")})
    derived: int = 0

    def __post_init__(self):
        if self.width < 1:
            raise ValueError(f"Inner.width must be >= 1, got {self.width}")


@dataclass
class Outer:
    rate: float = field(default=0.1, metadata={"help": "a rate"})
    enabled: bool = True
    folder: str | None = None
    shape: tuple[int, int] = (1, 2)  # not a scalar: no flag
    names: tuple[str, ...] = ("a",)
    weights: tuple[float, ...] | None = None
    inner: Inner = field(default_factory=Inner)


def parse(argv):
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(
        parser, Outer(), skip=frozenset({"inner.derived"}), help_texts={"enabled": "switch"}
    )
    return parser, parser.parse_args(argv)


def test_flags_cover_scalar_fields_with_help_and_defaults():
    parser, _ = parse([])
    text = parser.format_help()
    for flag in ("--rate", "--enabled", "--folder", "--inner.width", "--inner.kind"):
        assert flag in text
    assert "--shape" not in text and "--inner.derived" not in text
    assert "layer width (default: 8)" in text and "switch (default: True)" in text


def test_only_given_flags_override_and_sections_are_revalidated():
    _, args = parse(["--rate", "2", "--enabled", "no", "--folder", "none", "--inner.width", "16"])
    config = apply_arguments(Outer(folder="x"), args)
    assert config == Outer(rate=2.0, enabled=False, folder=None, inner=Inner(width=16))
    _, args = parse(["--inner.width", "0"])
    # The section names its field as Inner.width; in the tree it is the key inner.width and a flag.
    with pytest.raises(
        ValueError, match=r"command line: inner\.width \(--inner\.width\) must be >= 1, got 0"
    ):
        apply_arguments(Outer(), args)


def test_flag_words_are_read_in_any_case_and_a_trailing_comma_adds_no_element():
    _, args = parse(["--enabled", "False", "--folder", "null", "--names", "train,studio,"])
    config = apply_arguments(Outer(folder="x"), args)
    assert config == Outer(enabled=False, folder=None, names=("train", "studio"))
    for word, value in [("NO", False), ("Off", False), ("TRUE", True), ("Yes", True)]:
        assert apply_arguments(Outer(enabled=not value), parse(["--enabled", word])[1]).enabled is value
    _, args = parse(["--folder", "NULL", "--weights", "Null"])
    assert apply_arguments(Outer(folder="x", weights=(1.0,)), args) == Outer()


def test_bad_flag_values_are_argparse_errors(capsys):
    for argv in (["--enabled", "maybe"], ["--inner.kind", "c"], ["--inner.width", "wide"]):
        with pytest.raises(SystemExit):
            parse(argv)
    assert "invalid" in capsys.readouterr().err


def test_files_fill_the_tree_and_errors_name_the_file_and_field(tmp_path):
    json_file = tmp_path / "c.json"
    json_file.write_text(json.dumps({"rate": 1, "inner": {"kind": "b"}}))
    config = load_config_file(Outer(), json_file)
    assert config.rate == 1.0 and isinstance(config.rate, float) and config.inner.kind == "b"
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("inner:\n  widht: 3\n")
    with pytest.raises(ValueError, match=r"c\.yaml: unknown field 'inner\.widht'"):
        load_config_file(Outer(), yaml_file)
    with pytest.raises(ValueError, match="'enabled' must be bool"):
        merge_config(Outer(), {"enabled": "yes"}, source="test")
    with pytest.raises(ValueError, match="field 'inner' must be a mapping"):
        merge_config(Outer(), {"inner": 3}, source="test")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ValueError, match="broken.json: not valid JSON at line 1"):
        load_config_file(Outer(), broken)
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        load_config_file(Outer(), tmp_path / "missing.yaml")


def test_numeric_strings_from_files_are_numbers_and_other_strings_still_name_the_field(tmp_path):
    """PyYAML reads `1e-3` (no dot) as the string "1e-3": it used to be rejected as 'must be float'."""
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("rate: 1e-3\ninner:\n  width: '16'\n")
    config = load_config_file(Outer(), yaml_file)
    assert config.rate == 1e-3 and isinstance(config.rate, float)
    assert config.inner.width == 16 and isinstance(config.inner.width, int)
    yaml_file.write_text("rate: fast\n")
    with pytest.raises(ValueError, match=r"c\.yaml: field 'rate' must be float, got 'fast'"):
        load_config_file(Outer(), yaml_file)
    yaml_file.write_text("inner:\n  width: 2.5e1\n")  # a float string is no int
    with pytest.raises(ValueError, match=r"c\.yaml: field 'inner\.width' must be int"):
        load_config_file(Outer(), yaml_file)
    for word in ("yes", "true", "on"):  # YAML 1.1 booleans (Python's True is an int 1): no width
        yaml_file.write_text(f"inner:\n  width: {word}\n")
        with pytest.raises(ValueError, match=r"c\.yaml: field 'inner\.width' must be int, got True"):
            load_config_file(Outer(), yaml_file)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"rate": None}, "field 'rate' must be float, got None"),
        ({"enabled": None}, "field 'enabled' must be bool, got None"),
        ({"inner": {"kind": None}}, "field 'inner.kind' must be str, got None"),
    ],
)
def test_null_in_a_file_is_refused_for_a_setting_that_takes_no_none(data, message):
    """Only an optional setting (``str | None``) takes ``null``; a bool, float or str one kept None without a
    word, and the run failed (or ran) with it far from the file."""
    with pytest.raises(ValueError, match=rf"^run\.yaml: {re.escape(message)}$"):
        merge_config(Outer(folder="x"), data, source="run.yaml")
    assert merge_config(Outer(folder="x"), {"folder": None}, source="run.yaml").folder is None


def test_none_is_a_plain_word_for_a_flag_that_takes_no_none(capsys):
    """``none`` and ``null`` mean None only for an optional setting: ``--logger.log_model none`` is one of
    its words, and ``--rate none`` is no float."""
    assert clap_config(["--logger.log_model", "none"]).logger.log_model == "none"
    assert apply_arguments(Outer(folder="x"), parse(["--folder", "none"])[1]).folder is None
    with pytest.raises(SystemExit):
        parse(["--rate", "none"])
    assert "invalid float value: 'none'" in capsys.readouterr().err


def test_settings_parsers_and_their_subparsers_refuse_abbreviated_flags(capsys):
    parser = SettingsParser(prog="prog")
    add_dataclass_arguments(parser, Outer())
    assert parser.parse_args(["--rate", "2"]).rate == 2.0
    with pytest.raises(SystemExit):
        parser.parse_args(["--rat", "2"])  # used to mean --rate
    assert "unrecognized arguments: --rat" in capsys.readouterr().err
    sub = SettingsParser(prog="prog").add_subparsers(dest="command")
    export = sub.add_parser("export")
    export.add_argument("--checkpoint")
    with pytest.raises(SystemExit):
        export.parse_args(["--check", "x"])
    assert "unrecognized arguments: --check" in capsys.readouterr().err


# ---- presets: one mechanism (resolve_settings) behind both recipes' --preset ---------------------------------
def chord_config(argv):
    from audiotrain.recipes.chords import cli as chords

    parser = chords._training_parser("chords", "", needs_data=False)
    return chords._config_from_args(parser.parse_args(argv))


def clap_config(argv):
    from audiotrain.recipes import clap

    return clap.parse_config(argv)


def chord_presets():
    from audiotrain.recipes.chords.config import PRESETS

    return PRESETS


def clap_presets():
    from audiotrain.recipes.clap.config import PRESETS

    return PRESETS


# (resolve argv, presets, main, epochs of a config, the epochs flag, the file layout of epochs)
RECIPES = {
    "chords": (chord_config, chord_presets, "chords", lambda c: c.num_epochs, "--num_epochs", lambda n: {"num_epochs": n}),
    "clap": (clap_config, clap_presets, "clap", lambda c: c.train.epochs, "--train.epochs", lambda n: {"train": {"epochs": n}}),
}  # fmt: skip


@pytest.mark.parametrize("recipe", RECIPES)
def test_each_recipe_ships_the_three_presets_and_each_resolves(recipe):
    resolve, presets, _, epochs, _, _ = RECIPES[recipe]
    assert list(presets()) == ["quick_test", "development", "production"]
    resolved = {name: epochs(resolve(["--preset", name])) for name in presets()}
    assert resolved["quick_test"] == 1  # seconds, not minutes
    assert resolved["quick_test"] < resolved["development"] < resolved["production"]


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_precedence_is_preset_then_file_then_flags(recipe, tmp_path):
    resolve, _, _, epochs, flag, in_file = RECIPES[recipe]
    file = tmp_path / "run.json"
    file.write_text(json.dumps(in_file(7)))
    assert epochs(resolve(["--preset", "production", "--config", str(file)])) == 7  # file > preset
    assert epochs(resolve(["--preset", "production", "--config", str(file), flag, "9"])) == 9  # flags > file
    named = tmp_path / "named.json"
    named.write_text(json.dumps({"preset": "quick_test"}))  # a file may name its preset
    assert epochs(resolve(["--config", str(named)])) == 1


@pytest.mark.parametrize("recipe", RECIPES)
def test_an_unknown_preset_is_an_error_listing_the_presets(recipe, tmp_path, capsys):
    import importlib

    _, _, name, _, _, _ = RECIPES[recipe]
    main = importlib.import_module(f"audiotrain.recipes.{name}").main
    file = tmp_path / "run.yaml"
    file.write_text("preset: quick_tset\n")
    for argv in (["--preset", "fast"], ["--config", str(file)]):
        status = main(argv)
        err = capsys.readouterr().err
        assert status == 2 and "the presets are quick_test, development, production" in err
    assert "did you mean 'quick_test'?" in err


def test_a_run_record_and_a_checkpoint_state_are_read_as_their_settings(tmp_path):
    from audiotrain.recipes.config_cli import settings_of

    settings = {"rate": 0.5, "inner": {"width": 3}}
    assert settings_of({"config": settings, "versions": {}, "command": []}) == settings  # RUN/config.json
    assert settings_of({"run_config": settings, "progress": {}}) == settings  # trainer_state.json
    assert settings_of(settings) == settings


def test_tuples_of_scalars_are_comma_separated_flags_and_lists_in_files(tmp_path):
    parser, args = parse(["--names", "a,b", "--weights", "[2,1]"])
    assert "--names STR,..." in parser.format_help() and "--weights FLOAT,..." in parser.format_help()
    assert apply_arguments(Outer(), args) == Outer(names=("a", "b"), weights=(2.0, 1.0))
    assert apply_arguments(Outer(weights=(1.0,)), parse(["--weights", "none"])[1]).weights is None
    with pytest.raises(SystemExit):
        parse(["--weights", "2,heavy"])
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("names: [x, y]\nweights: [2, 1.5]\n")
    assert load_config_file(Outer(), yaml_file) == Outer(names=("x", "y"), weights=(2.0, 1.5))
    with pytest.raises(ValueError, match=r"field 'weights' must be a list of float, got \['heavy'\]"):
        merge_config(Outer(), {"weights": ["heavy"]}, source="test")
    with pytest.raises(ValueError, match="field 'names' must be a list of str, got 3"):
        merge_config(Outer(), {"names": 3}, source="test")


def test_chords_benchmark_flag_starts_from_the_longer_config_and_flags_still_override():
    from audiotrain.recipes.chords.config import TrainingConfig, benchmark_config

    default, longer = TrainingConfig(), chord_config(["--benchmark"])
    assert longer.to_dict() == benchmark_config().to_dict()
    # More songs and more passes over them than the README's run: the setting the benchmark measures.
    assert longer.data.demo_songs > default.data.demo_songs and longer.num_epochs >= default.num_epochs
    tuned = chord_config(["--benchmark", "--num_epochs", "2", "--data.demo_songs", "12"])
    assert (tuned.num_epochs, tuned.data.demo_songs) == (2, 12)
    # The rest stays the benchmark's: its 12 held-out songs, not the default's 8.
    assert tuned.data.demo_test_songs == longer.data.demo_test_songs != default.data.demo_test_songs
    assert benchmark_config(num_epochs=3).num_epochs == 3
    with pytest.raises(ValueError, match="num_epochs"):
        benchmark_config(num_epochs=0)


def test_chords_benchmark_flag_that_a_preset_overrides_wholly_is_refused(tmp_path, monkeypatch, capsys):
    """`--preset quick_test --benchmark` ran the quick_test run without a word: the preset sets every setting
    the benchmark config does, as a --preset beside a run's whole record (refused) would change nothing."""
    from audiotrain.recipes.chords import cli as chords

    monkeypatch.setattr(chords, "run_training", lambda *a, **k: pytest.fail("ran without its benchmark"))
    run_dir = tmp_path / "run"
    assert chords.main(["--preset", "quick_test", "--benchmark", "--run_dir", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "--benchmark changes nothing beside --preset quick_test" in err and "Traceback" not in err, err
    assert not run_dir.exists()
    # A preset that leaves some of it (development keeps the benchmark's 1024 songs) still starts from it.
    assert chord_config(["--preset", "development", "--benchmark"]).data.demo_songs == 1024


def test_a_file_of_three_keys_none_a_setting_is_no_config_file_and_two_get_a_did_you_mean(tmp_path):
    """Three keys that are no setting (``epoch``, ``val_loss``, ``lr`` of a run's history) are another kind of
    file; one or two are misspelt settings, each with its "did you mean"."""
    from audiotrain.recipes.chords.config import PRESETS, TrainingConfig
    from audiotrain.recipes.config_cli import file_settings

    file = tmp_path / "scores.yaml"
    file.write_text("epoch: 1\nval_loss: 3.0\nlr: 0.1\n")
    with pytest.raises(
        ValueError, match=r"scores\.yaml does not look like a config file: 3 of its 3 top-level"
    ):
        file_settings(file, PRESETS, TrainingConfig())
    file.write_text("epoch: 1\nval_loss: 3.0\n")
    assert file_settings(file, PRESETS, TrainingConfig()) == (None, {"epoch": 1, "val_loss": 3.0})


def test_a_logger_list_with_an_item_that_is_no_name_is_one_error_naming_the_field(tmp_path):
    from audiotrain.recipes.chords.config import TrainingConfig

    file = tmp_path / "run.yaml"
    file.write_text("logger:\n  names: [csv, 1]\n")
    with pytest.raises(
        ValueError, match=r"run\.yaml: field 'logger\.names' must be a list of str, got \['csv', 1\]"
    ):
        load_config_file(TrainingConfig(), file)


def test_a_recipe_config_file_may_list_its_loggers_and_a_typo_names_the_dotted_field(tmp_path):
    from audiotrain.recipes.chords.config import TrainingConfig

    file = tmp_path / "run.yaml"
    file.write_text("logger:\n  names: [tensorboard, csv]\n")
    assert load_config_file(TrainingConfig(), file).logger.names == "tensorboard,csv"
    file.write_text("logger:\n  nmes: csv\n")
    with pytest.raises(ValueError, match=r"unknown field 'logger.nmes'; did you mean 'logger.names'\?"):
        load_config_file(TrainingConfig(), file)
    # `--logger csv` written as `logger: csv` got "must be a mapping of fields, got str" and no word on names.
    file.write_text("logger: csv\n")
    with pytest.raises(
        ValueError, match=r"got str \('csv'; --logger csv is logger.names in a file: logger: "
    ):
        load_config_file(TrainingConfig(), file)


@pytest.mark.parametrize(
    "recipe, text, fragments",
    [
        ("chords", "1: 2\n", ("unknown field 1 at the top level", "a number, not a name", "'num_epochs'")),
        (
            "chords",
            "model:\n  true: 3\n",
            ("unknown field True in section 'model'", "a boolean", "'d_model'"),
        ),
        (
            "clap",
            "train:\n  null: 3\n",
            ("unknown field None in section 'train'", "null, not a name", "'epochs'"),
        ),
    ],
)
def test_a_yaml_key_that_is_not_a_name_is_named_with_its_place(recipe, text, fragments, tmp_path, capsys):
    """PyYAML reads a bare 1, true or null as a number, a boolean or None: once a TypeError traceback."""
    import importlib

    file = tmp_path / "settings.yaml"
    file.write_text(text)
    status = importlib.import_module(f"audiotrain.recipes.{recipe}").main(["--config", str(file)])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err and "settings.yaml" in err
    for fragment in fragments:
        assert fragment in err, err


@pytest.mark.parametrize(
    "recipe, text, message",
    [
        ("chords", "seed: 1\nmodel:\n  d_modle: 64\n", "run.yaml line 3: unknown field 'model.d_modle'"),
        ("chords", "seed: 1\nnum_epochs: 3.0\n", "run.yaml line 2: field 'num_epochs' must be int"),
        ("chords", "seed: 1\nnum_epochs: -1\n", "run.yaml line 2: num_epochs (--num_epochs) must be"),
        ("chords", "seed: 1\nmodle:\n  d_model: 64\n", "run.yaml line 2: unknown field 'modle'"),
        # A flag's dotted name as a key was "unknown field 'model.d_model'", as if no such setting existed.
        (
            "chords",
            "seed: 1\nmodel.d_model: 64\n",
            "run.yaml line 2: field 'model.d_model' is written nested",
        ),
        ("chords", "data.demo_songs: 8\n", "data: {demo_songs: 8}"),
        ("chords", "model.d_modle: 64\n", "unknown field 'model.d_modle'; did you mean 'model.d_model'?"),
        ("clap", "train.epochs: 1\n", "run.yaml line 1: field 'train.epochs' is written nested"),
        ("clap", "train:\n  seed: 1\n  epoch: 1\n", "run.yaml line 3: unknown field 'train.epoch'"),
    ],
)
def test_a_recipe_config_file_mistake_is_named_by_its_line(recipe, text, message, tmp_path, capsys):
    """The recipes' --config errors named the file and field but not the line (create_trainer's did, and so
    did the recipes' own for a key given twice)."""
    import importlib

    file = tmp_path / "run.yaml"
    file.write_text(text)
    status = importlib.import_module(f"audiotrain.recipes.{recipe}").main(["--config", str(file)])
    assert status == 2
    assert message in capsys.readouterr().err


def test_a_config_file_holds_derived_fields_only_with_the_values_they_follow(tmp_path):
    """model.num_chord_types 3 trained to the end, then failed to decode; model.n_bins 100 was replaced."""
    file = tmp_path / "run.yaml"
    for text, fragments in (
        (
            "model:\n  num_chord_types: 3\n",
            ("model.num_chord_types is 3", "the chord vocabulary's types (32"),
        ),
        ("model:\n  n_bins: 100\n", ("model.n_bins is 100", "features.n_bins (216 here)")),
        ("features:\n  n_bins: 180\nmodel:\n  n_bins: 216\n", ("model.n_bins is 216", "(180 here)")),
    ):
        file.write_text(text)
        with pytest.raises(ValueError) as error:
            chord_config(["--config", str(file)])
        assert all(fragment in str(error.value) for fragment in ("run.yaml", *fragments)), error.value
    # The values they follow pass: a run's own config.json holds them, and repeats the run.
    file.write_text("features:\n  n_bins: 180\nmodel:\n  n_bins: 180\n  num_chord_types: 32\n")
    assert chord_config(["--config", str(file)]).model.n_bins == 180
    record = tmp_path / "config.json"
    record.write_text(
        json.dumps({"config": chord_config(["--features.n_bins", "180"]).to_dict(), "versions": {}})
    )
    assert chord_config(["--config", str(record)]).model.n_bins == 180
    # A flag after the file may still change what they follow.
    assert chord_config(["--config", str(record), "--features.n_bins", "144"]).model.n_bins == 144


@pytest.mark.parametrize(
    "recipe, argv, suggestion",
    [
        ("chords", ["--num_epoch", "2"], "unrecognized arguments: --num_epoch 2; did you mean --num_epochs?"),
        ("chords", ["train", "--dat", "x"], "did you mean --data?"),
        (
            "clap",
            ["--train.epoch", "2"],
            "unrecognized arguments: --train.epoch 2; did you mean --train.epochs?",
        ),
        ("clap", ["export", "--checkpont", "x", "--out", "y"], "did you mean --checkpoint?"),
        # Section-less short names, too unlike their dotted flag as a whole: matched on the part after the dot
        ("clap", ["--epochs", "1"], "unrecognized arguments: --epochs 1; did you mean --train.epochs?"),
        ("clap", ["--max_step", "1"], "did you mean --train.max_steps?"),
        (
            "chords",
            ["--method", "median"],
            "unrecognized arguments: --method median; did you mean --decode.method?",
        ),
        ("chords", ["--offline", "true"], "did you mean --logger.offline?"),
        # A sweep's usual short names: no close match by spelling (difflib's would be --logger for --lr)
        ("chords", ["--lr", "1e-3"], "unrecognized arguments: --lr 1e-3; did you mean --learning_rate?"),
        ("chords", ["--wd", "0"], "did you mean --weight_decay?"),
        ("chords", ["--bs", "8"], "did you mean --batch_size?"),
        ("clap", ["--train.lr", "1e-4"], "did you mean --task.learning_rate?"),
        ("clap", ["--bs", "8"], "did you mean --train.batch_size?"),
    ],
)
def test_a_misspelt_flag_gets_a_suggestion_as_a_config_key_does(recipe, argv, suggestion, capsys):
    import importlib

    status = importlib.import_module(f"audiotrain.recipes.{recipe}").main(argv)
    assert status == 2 and suggestion in capsys.readouterr().err


def test_a_misspelt_command_gets_a_suggestion(capsys):
    from audiotrain.recipes import chords, clap

    assert chords.main(["trian"]) == 2
    assert "unknown command 'trian' (did you mean 'train'?)" in capsys.readouterr().err
    assert clap.main(["exprot", "--checkpoint", "x", "--out", "y"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'exprot' (did you mean 'export'?)" in err and "or none (to train)" in err


def test_a_suggestion_is_only_offered_when_close(capsys):
    parser = SettingsParser(prog="prog")
    parser.add_argument("--logger")
    with pytest.raises(SystemExit):
        parser.parse_args(["--lr", "1"])  # difflib's own cutoff offered --logger
    assert "did you mean" not in capsys.readouterr().err


@pytest.mark.parametrize("recipe", RECIPES)
def test_a_preset_flag_and_another_preset_in_the_file_are_refused(recipe, tmp_path):
    """The file's preset used to win silently: --preset quick_test ran production's 80-clip demo."""
    resolve, _, _, epochs, _, _ = RECIPES[recipe]
    file = tmp_path / "run.yaml"
    file.write_text("preset: production\n")
    with pytest.raises(
        (SystemExit, ValueError)
    ):  # (the chord recipe's main turns the ValueError into exit 2)
        resolve(["--preset", "quick_test", "--config", str(file)])
    assert epochs(resolve(["--preset", "production", "--config", str(file)])) == epochs(
        resolve(["--preset", "production"])
    )  # the same preset twice is fine


@pytest.mark.parametrize("recipe", RECIPES)
def test_a_preset_beside_a_run_record_that_sets_every_setting_is_refused(recipe, tmp_path, capsys):
    """--config RUN/config.json --preset development ran the recorded settings, the preset's changed none of
    them (the file wins over a preset and sets them all), and nothing said so."""
    import dataclasses
    import importlib

    resolve, _, name, epochs, _, in_file = RECIPES[recipe]
    record = tmp_path / "config.json"
    settings = dataclasses.asdict(resolve(["--preset", "quick_test"]))
    record.write_text(json.dumps({"config": settings, "versions": {"audiotrain": "0"}}))
    main = importlib.import_module(f"audiotrain.recipes.{name}").main
    status = main(["--config", str(record), "--preset", "development"])
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) <= 2, err
    assert f"--preset development changes nothing beside --config {record}" in err, err
    assert "a run's record sets them all" in err and "give one" in err, err
    assert epochs(resolve(["--config", str(record)])) == 1  # the record alone: as before
    # A file that leaves a setting of the preset to it: the preset still fills that one.
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(in_file(7)))
    assert epochs(resolve(["--config", str(partial), "--preset", "production"])) == 7


def test_a_preset_conflict_names_both(tmp_path, capsys):
    from audiotrain.recipes import clap

    file = tmp_path / "run.yaml"
    file.write_text("preset: production\n")
    status = clap.main(["--preset", "quick_test", "--config", str(file)])
    assert status == 2
    err = capsys.readouterr().err
    assert "--preset quick_test" in err and "run.yaml (preset: production)" in err


def test_a_run_record_of_the_other_recipe_is_named_as_such(tmp_path, capsys):
    from audiotrain.recipes import chords, clap

    record = tmp_path / "config.json"
    command = ["python", "-m", "audiotrain.recipes.clap", "--preset", "quick_test"]
    record.write_text(
        json.dumps({"config": dataclasses.asdict(clap_config([])), "versions": {}, "command": command})
    )
    status = chords.main(["--config", str(record)])
    assert status == 2
    assert "config.json is the record of a run of the clap recipe, not of this one" in capsys.readouterr().err
    record.write_text(json.dumps({"config": chord_config([]).to_dict(), "versions": {}, "command": ["x.py"]}))
    status = clap.main(["--config", str(record)])
    assert status == 2
    assert "config.json is the record of a run of another recipe" in capsys.readouterr().err


def test_help_shows_a_tuple_default_as_the_flag_takes_it():
    parser, _ = parse([])
    assert "(default: a)" in parser.format_help().replace("\n", " ")  # names=("a",), not ('a',)


@pytest.mark.parametrize(
    "recipe, flags, in_file, read",
    [
        (
            "chords",
            ["--checkpoint_dir=~/ck", "--data.data_dir=~/songs"],
            {"data": {"cache_dir": "~/cache"}},
            lambda c: (c.checkpoint_dir, c.data.data_dir, c.data.cache_dir),
        ),
        (
            "clap",
            ["--out=~/ck", "--data=~/songs"],
            {"demo": {"folder": "~/cache"}},
            lambda c: (c.out, c.data, c.demo.folder),
        ),
    ],
)
def test_a_leading_tilde_in_a_path_setting_is_the_home_folder_from_a_flag_or_a_file(
    recipe, flags, in_file, read, tmp_path, monkeypatch
):
    """The shell leaves ``~`` after ``=`` as it is: ``--run_dir=~/x`` made a literal ./~/x run folder while its
    checkpoints went to $HOME/x (ModelCheckpoint expands it), and ``--data=~/songs`` was no folder."""
    resolve = RECIPES[recipe][0]
    monkeypatch.setenv("HOME", str(tmp_path))
    file = tmp_path / "run.json"
    file.write_text(json.dumps(in_file))
    paths = read(resolve([*flags, "--config", str(file)]))
    assert paths == tuple(str(tmp_path / name) for name in ("ck", "songs", "cache"))
    # The path flags of the command lines (run folders, checkpoints, config files) too.
    from audiotrain.recipes._run import nonempty_path

    assert nonempty_path("~/runs/x") == str(tmp_path / "runs" / "x")


@pytest.mark.parametrize("blank", ["", "  "])
def test_a_path_flag_of_only_blanks_is_refused(blank):
    """``--run_dir "$RUN"`` with RUN unset, or holding a space: a run written into the current folder, or into
    a folder named " " there."""
    from audiotrain.recipes._run import nonempty_path

    with pytest.raises(argparse.ArgumentTypeError, match="an empty path"):
        nonempty_path(blank)


def test_the_demos_errors_point_to_the_help_that_lists_its_settings(capsys):
    """`python -m audiotrain.recipes.chords --help` is the overview of the commands, which lists no flag."""
    from audiotrain.recipes import chords

    for argv, help_command in (
        (["--num_epochs", "0"], "python -m audiotrain.recipes.chords demo --help"),
        (["--num_epoch", "3"], "python -m audiotrain.recipes.chords demo --help"),
        (["train", "--num_epochs", "0"], "python -m audiotrain.recipes.chords train --help"),
    ):
        status = chords.main(argv)
        assert status == 2
        assert f"(see {help_command} for every setting)" in capsys.readouterr().err


# ---- upper bounds: a slip of extra zeros is refused when the config is built, naming the flag -------------
_HUGE = ("1000000000000", str(2**70))


@pytest.mark.parametrize(
    "recipe, flag, value, fragment",
    [
        *(("chords", flag, value, f"{flag[2:]} ({flag}) must be") for value in _HUGE for flag in (
            "--num_epochs", "--save_every", "--patience", "--log_every", "--batch_size", "--warmup_epochs",
            "--data.demo_songs", "--data.demo_test_songs", "--data.num_workers", "--features.n_bins",
        )),
        *(("clap", flag, value, f"{flag[2:]} ({flag}) must be") for value in _HUGE for flag in (
            "--demo.width", "--demo.vocab_size", "--demo.clips", "--task.total_steps", "--task.warmup_steps",
            "--train.max_steps", "--train.epochs", "--train.batch_size", "--train.accumulate_grad_batches",
            "--train.log_every_n_steps", "--dataset.num_workers",
        )),
        # An int past a float's range: OverflowError from math.isfinite / float() before.
        ("chords", "--num_epochs", "1" + "0" * 400, "num_epochs (--num_epochs) must be"),
    ],
)  # fmt: skip
def test_absurdly_large_counts_are_refused_naming_the_flag(recipe, flag, value, fragment, capsys):
    """10**12 CQT bins, demo width or data workers crashed with a MemoryError or OverflowError traceback,
    2**70 epochs with MLX's std::bad_cast, after the run folder was written."""
    resolve = RECIPES[recipe][0]
    with pytest.raises((SystemExit, ValueError)) as raised:
        resolve([flag, value])
    message = str(raised.value) if raised.type is ValueError else capsys.readouterr().err
    assert fragment in message and "Traceback" not in message, message


def test_a_huge_number_in_a_file_for_a_float_setting_names_the_field(tmp_path):
    file = tmp_path / "run.yaml"
    file.write_text(f"learning_rate: {10**400}\n")
    with pytest.raises(ValueError, match=r"run.yaml line 1: field 'learning_rate' must be a finite float"):
        chord_config(["--config", str(file)])


def test_real_sizes_stay_well_inside_the_bounds():
    config = chord_config(["--num_epochs", "1000", "--data.demo_songs", "20000", "--features.n_bins", "252"])
    assert (config.num_epochs, config.data.demo_songs, config.features.n_bins) == (1000, 20000, 252)
    clap = clap_config(
        ["--task.total_steps", "1000000", "--task.warmup_steps", "10000", "--demo.width", "512"]
    )
    assert (clap.task.total_steps, clap.demo.width) == (1000000, 512)


def test_a_count_at_its_upper_bound_is_taken_and_none_or_a_bool_is_no_number():
    """The bounds are inclusive: ``<= 100000`` lets 100000 through. None passes only an optional setting, and
    True (an int to Python) is no number of epochs or rate."""
    assert chord_config(["--num_epochs", str(MAX_EPOCHS)]).num_epochs == MAX_EPOCHS
    check_setting("x", 5, at_least=5, at_most=5)
    for bound in ({"above": 5}, {"below": 5}):
        with pytest.raises(SettingError):
            check_setting("x", 5, **bound)
    check_setting("x", None, at_least=1, optional=True)
    with pytest.raises(SettingError, match=r"x must be a finite number >= 1, got None"):
        check_setting("x", None, at_least=1)
    with pytest.raises(SettingError, match=r"x must be a finite number >= 0, got True"):
        check_setting("x", True, at_least=0)


def test_chord_settings_at_the_edge_of_their_range(capsys):
    """Label smoothing 1 makes every target uniform (nothing to learn); a hop of one second (hop_length = sr,
    where sr is a multiple of the CQT's step) is the longest the features allow, and is taken."""
    with pytest.raises((SystemExit, ValueError)) as raised:
        chord_config(["--label_smoothing", "1"])
    message = str(raised.value) if raised.type is ValueError else capsys.readouterr().err
    assert "label_smoothing (--label_smoothing) must be in [0, 1), got 1.0" in message
    assert chord_config(["--label_smoothing", "0.99"]).label_smoothing == 0.99
    features = chord_config(["--features.sr", "16000", "--features.hop_length", "16000"]).features
    assert (features.sr, features.hop_length) == (16000, 16000)


@pytest.mark.parametrize(
    "value, expected",
    [
        (2.5, "an integer > 0 and <= 100000"),
        (None, "an integer > 0 and <= 100000"),
        (True, "an integer > 0 and <= 100000"),
        (float("nan"), "an integer > 0 and <= 100000"),
    ],
)
def test_a_config_built_in_python_refuses_what_a_flag_or_file_could_not_give(value, expected):
    """A flag or a file's value is typed by `merge_config`; a config built in Python (a notebook, a script)
    has only its section's `check_setting`: 2.5 epochs, None or True must not pass there either."""
    from audiotrain.recipes.chords.config import TrainingConfig

    with pytest.raises(SettingError, match=rf"num_epochs must be {re.escape(expected)}, got"):
        TrainingConfig(num_epochs=value)


def test_a_path_given_in_python_is_kept_as_the_text_a_file_would_hold(tmp_path):
    """config.json and the checkpoints record the settings as JSON, which has no pathlib.Path."""
    from audiotrain.recipes.chords.config import TrainingConfig

    config = TrainingConfig(checkpoint_dir=tmp_path / "ck")
    assert config.checkpoint_dir == str(tmp_path / "ck")
    json.dumps(dataclasses.asdict(config))


@pytest.mark.parametrize("value", ["nan", "-1", "1", "inf", "-inf"])
@pytest.mark.parametrize("name", ["val_fraction", "test_fraction"])
def test_the_chord_split_fractions_are_checked_with_the_config(name, value, tmp_path, capsys):
    """They were checked only once the data was prepared, by a line naming no flag ("cannot convert float
    NaN to integer" for nan)."""
    expected = rf"command line: data.{name} \(--data.{name}\) must be a finite number >= 0 and < 1"
    with pytest.raises(ValueError, match=expected):
        chord_config([f"--data.{name}={value}"])
    file = tmp_path / "run.yaml"
    file.write_text(f"data: {{{name}: {'.nan' if value == 'nan' else value}}}\n")
    with pytest.raises(ValueError, match=rf"run.yaml line 1: data.{name} \(--data.{name}\) must be"):
        chord_config(["--config", str(file)])


def test_chord_split_fractions_that_leave_no_training_songs_are_refused(tmp_path, capsys):
    with pytest.raises(
        ValueError, match=r"data.test_fraction \(--data.test_fraction\) must be < 1 - data.val_fraction"
    ):
        chord_config(
            ["--data.data_dir", str(tmp_path), "--data.val_fraction", "0.5", "--data.test_fraction", "0.5"]
        )
    # `train --data DIR` too, which sets the data folder after the flags are read.
    from audiotrain.recipes import chords

    argv = ["train", "--data", str(tmp_path), "--data.val_fraction", "0.5", "--data.test_fraction", "0.5"]
    assert chords.main([*argv, "--run_dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "data.test_fraction (--data.test_fraction) must be < 1 - data.val_fraction (0.5)" in err, err
    assert not (tmp_path / "run").exists()
    # The demo holds out its own test songs: test_fraction is not used there.
    assert chord_config(["--data.val_fraction", "0.9"]).data.val_fraction == 0.9


# ---- a key given twice in a config file, --preset given twice ----------------------------------------------
@pytest.mark.parametrize(
    "name, text, message",
    [
        ("run.yaml", "num_epochs: 1\nnum_epochs: 5\n", "run.yaml line 2: num_epochs given twice (line 1)"),
        (
            "run.yaml",
            "train:\n  epochs: 1\n  epochs: 4\n",
            "run.yaml line 3: train.epochs given twice (line 2)",
        ),
        ("run.yaml", "train: {epochs: 1, epochs: 4}\n", "run.yaml line 1: train.epochs given twice (line 1)"),
        (
            "run.json",
            '{"num_epochs": 1,\n "num_epochs": 3}',
            "run.json line 2: num_epochs given twice (line 1)",
        ),
    ],
)
def test_a_key_given_twice_in_a_config_file_is_refused_with_both_lines(name, text, message, tmp_path):
    """The last one won without a word."""
    file = tmp_path / name
    file.write_text(text)
    with pytest.raises(ValueError, match=re.escape(message)):
        load_config_file(Outer(), file)


def test_a_yaml_merge_may_override_the_keys_it_brings_in(tmp_path):
    file = tmp_path / "run.yaml"
    file.write_text("base: &base {width: 2, kind: a}\ninner:\n  <<: *base\n  width: 3\n")
    assert load_config_data(file)["inner"] == {"width": 3, "kind": "a"}


@pytest.mark.parametrize("name", ["run.yaml", "run.yml", "run"])
def test_a_yaml_config_of_comments_only_changes_nothing(name, tmp_path):
    """A config whose settings are all commented out is an empty mapping, as an empty file is."""
    file = tmp_path / name
    file.write_text("# num_epochs: 5\n# learning_rate: 0.1\n")
    assert load_config_data(file) == {}


@pytest.mark.parametrize(
    "text, message",
    [
        (
            '{"seed": 1,}\n',
            "line 1: Expecting property name enclosed in double quotes (a comma before }? JSON",
        ),
        ('{"data": {"demo_styles": ["train",]}}\n', "line 1: Expecting value (a comma before ]? JSON allows"),
        (
            '{\n  // the seed\n  "seed": 1\n}\n',
            "line 2: Expecting property name enclosed in double quotes (a comment?",
        ),
        ('{"seed": 1 # mine\n}\n', "line 1: Expecting ',' delimiter (a comment? JSON has none)"),
    ],
)
def test_a_hand_written_json_configs_comment_or_trailing_comma_is_named(text, message, tmp_path, capsys):
    """json's own words ("Expecting property name enclosed in double quotes") named neither mistake."""
    from audiotrain.recipes.chords import main

    file = tmp_path / "run.json"
    file.write_text(text)
    assert main(["--config", str(file)]) == 2
    assert f"run.json: not valid JSON at {message}" in capsys.readouterr().err


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
@pytest.mark.parametrize("recipe", ["chords", "clap"])
def test_a_config_file_saved_as_utf16_is_named_so(recipe, encoding, tmp_path, capsys):
    """A config saved by Windows PowerShell 5's > (UTF-16) was "not UTF-8 text (byte 0xff at offset 0)",
    which left the user to find out what wrote which byte."""
    import importlib

    file = tmp_path / "run.yaml"
    text = "\ufeffseed: 1\n" if encoding == "utf-16-be" else "seed: 1\n"  # ("utf-16" writes its own mark)
    file.write_bytes(text.encode(encoding))
    status = importlib.import_module(f"audiotrain.recipes.{recipe}").main(["--config", str(file)])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    assert f"config file {file}: a UTF-16 text file" in err and "save it as UTF-8" in err, err


def test_preset_given_twice_with_different_names_is_refused(capsys):
    """--preset quick_test ... --preset production silently started two hours of feature computing."""
    with pytest.raises(SystemExit) as exit_info:
        chord_config(["--preset", "quick_test", "--preset", "production"])
    assert exit_info.value.code == 2
    assert "--preset given twice, quick_test and production; give one" in capsys.readouterr().err
    assert chord_config(["--preset", "quick_test", "--preset", "quick_test"]).num_epochs == 1
    with pytest.raises(SystemExit):
        clap_config(["--preset=development", "--preset", "production"])


@pytest.mark.parametrize("value", ["", " "])
def test_an_empty_checkpoint_dir_is_refused_as_every_empty_path_is(value, tmp_path):
    """It was taken as the run folder itself: best/ and last/ landed next to evaluation/ and config.json."""
    with pytest.raises(
        ValueError, match=r"command line: checkpoint_dir \(--checkpoint_dir\) must be a path, not empty"
    ):
        chord_config([f"--checkpoint_dir={value}"])
    file = tmp_path / "run.yaml"
    file.write_text(f"checkpoint_dir: '{value}'\n")
    with pytest.raises(
        ValueError, match=r"run.yaml line 1: checkpoint_dir \(--checkpoint_dir\) must be a path"
    ):
        chord_config(["--config", str(file)])


def test_clap_warmup_longer_than_the_schedule_is_refused_as_a_low_peak_rate_is(capsys):
    """--task.warmup_steps 100 --task.total_steps 10 ran without a word."""
    with pytest.raises(SystemExit):
        clap_config(["--task.warmup_steps", "100", "--task.total_steps", "10"])
    err = capsys.readouterr().err
    assert "task.warmup_steps (--task.warmup_steps) must be at most total_steps (10)" in err, err
    assert clap_config(["--task.warmup_steps", "10", "--task.total_steps", "10"]).task.warmup_steps == 10
    assert clap_config(["--task.warmup_steps", "100"]).task.warmup_steps == 100  # (total: the whole run)


def test_clap_evaluating_on_the_training_split_is_allowed_with_a_warning(capsys):
    """It scored before/after retrieval and picked the best checkpoint on the clips it trained on, exit 0 and
    no word; an overfitting check may want exactly that."""
    assert clap_config(["--dataset.eval_split", "train"]).dataset.eval_split == "train"
    err = capsys.readouterr().err
    assert err.count("warning: --dataset.eval_split train is the training split") == 1, err
    clap_config(["--dataset.eval_split", "Training"])  # (the split 'train', as the folder's splits are read)
    assert capsys.readouterr().err.count("warning: --dataset.eval_split Training is the training split") == 1
    clap_config(["--dataset.eval_split", "test"])
    clap_config(["--dataset.train_split", "development", "--dataset.eval_split", "train"])
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "process, said",
    [
        ("alone", True),
        ("the recipe's own rank", False),
        ("rank 0 under launch", True),
        ("rank 1 under launch", False),
    ],
)
def test_a_note_meant_once_per_job_is_said_by_rank_0_under_a_users_launcher(
    process, said, monkeypatch, capsys
):
    """Under python -m audiotrain launch, mlx.launch or mpirun no rank said it (no launching process of the
    recipe's own exists there to say it); in the recipe's own processes their launcher says it, once."""
    from audiotrain.distributed import collectives, local

    if process == "the recipe's own rank":
        monkeypatch.setenv(local.PROCESSES_ENV, "2")
    elif process.endswith("under launch"):  # (as a rank of a job the user launched sees itself)
        monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
        monkeypatch.setattr(collectives, "world_size", lambda: 2)
        monkeypatch.setattr(collectives, "rank", lambda: int(process.split()[1]))
    clap_config(["--dataset.eval_split", "train"])
    warned = "warning: --dataset.eval_split train is the training split" in capsys.readouterr().err
    assert warned == said


def test_a_size_too_large_to_build_is_an_error_naming_the_source_not_a_traceback():
    """The safety net under the bounds: a MemoryError or OverflowError while a section is built."""

    @dataclass
    class Allocating:
        bins: int = 1

        def __post_init__(self):
            if self.bins > 10**6:
                raise MemoryError("Unable to allocate 7.28 TiB")

    with pytest.raises(ValueError, match=r"run.yaml: a setting is too large to build \(MemoryError: Unable"):
        merge_config(Allocating(), {"bins": 10**12}, source="run.yaml")


UNDER_AN_ADDRESS_SPACE_LIMIT = """
import resource
import mlx.core as mx
import mlx.nn as nn
from audiotrain._proc import own_status_bytes
from audiotrain.recipes.config_cli import check_fits_memory

# 1 GB more than the process maps now: far below what MLX alone would allow (the machine's memory).
limit = own_status_bytes("VmSize") + 10**9
resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
assert mx.get_memory_limit() > 2 * 10**9
try:
    check_fits_memory(nn.Linear(10_000, 10_000), "--width 10000")  # 100 M parameters: 1.6 GB to train
except ValueError as error:
    print(error)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the address space Linux reports")
def test_a_model_too_big_for_the_address_space_limit_is_refused_in_one_line(tmp_path):
    # MLX sizes its limit from the device and knows nothing of `ulimit -v`: a model that fits the machine but
    # not the limit was not refused, and training died in MLX with a segmentation fault (exit 139).
    script = tmp_path / "check.py"
    script.write_text(UNDER_AN_ADDRESS_SPACE_LIMIT)
    env = child_env()
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.fullmatch(
        r"--width 10000: a model of 100,010,000 parameters, whose training needs 1.6 GB for its weights, "
        r"gradients and AdamW's two moments alone, more than the (0\.9|1\.0) GB left under this process's "
        r"ulimit -v limit of \d+\.\d GB; choose a smaller model\n",
        done.stdout,
    ), done.stdout


def test_a_model_that_fits_one_process_but_not_one_copy_per_local_process_is_refused(monkeypatch):
    """``--model.d_model 8192`` fit one process's memory and was not refused; the recipe trains a copy in each
    of its local processes (two on two cores), and the kernel's OOM killer ended rank 0 without a message,
    leaving a failed run folder. The need is counted per copy, against the same machine's memory."""
    from audiotrain.recipes import config_cli

    import mlx.nn as nn

    monkeypatch.setattr(
        config_cli, "training_memory_limit", lambda: (int(2.5e9), "MLX may use on this machine")
    )
    model = nn.Linear(10_000, 10_000)  # 100 M parameters: 1.6 GB to train
    config_cli.check_fits_memory(model, "--width 10000")  # one process: fits
    with pytest.raises(ValueError) as raised:
        config_cli.check_fits_memory(model, "--width 10000", processes=2)
    assert str(raised.value) == (
        "--width 10000: a model of 100,010,000 parameters, whose training needs 1.6 GB for its weights, "
        "gradients and AdamW's two moments alone in each of the 2 processes training on this machine (one copy "
        "each: 3.2 GB), more than the 2.5 GB MLX may use on this machine; pass --processes 1, or choose a "
        "smaller model"
    )
    monkeypatch.setattr(
        config_cli, "training_memory_limit", lambda: (int(5e9), "MLX may use on this machine")
    )
    with pytest.raises(ValueError, match=r"one copy each: 6\.4 GB.*; pass -n 3 \(or fewer\), or choose"):
        config_cli.check_fits_memory(model, "--width 10000", processes=4, processes_flag="-n")
    monkeypatch.setattr(
        config_cli, "training_memory_limit", lambda: (int(1e9), "MLX may use on this machine")
    )
    with pytest.raises(ValueError, match=r"choose a smaller model \(one copy alone does not fit\)$"):
        config_cli.check_fits_memory(model, "--width 10000", processes=2)


def test_a_checkpoint_of_the_other_recipe_is_named_a_checkpoint_and_the_remedy_is_one_of_this_recipe(
    tmp_path,
):
    """`clap --resume CHORDS_CHECKPOINT` said "is the record of a run of another recipe ... Pass a config file
    (or run) of this recipe", though no config file was given."""
    from audiotrain.recipes.clap.config import ClapRecipeConfig
    from audiotrain.recipes.config_cli import _check_recipe_of_record

    state = tmp_path / "best" / "trainer_state.json"
    with pytest.raises(ValueError) as raised:
        _check_recipe_of_record({}, {"batch_size": 16, "num_epochs": 3}, ClapRecipeConfig(), state)
    message = str(raised.value)
    assert message.startswith(f"{state} is a checkpoint of a run of another recipe, not of this one")
    assert message.endswith("Give a checkpoint of this recipe's runs") and "config file" not in message


def test_clap_defaults_presets_and_cv_folds_are_as_documented(tmp_path, monkeypatch):
    """The values --help and README state: the defaults (batch 8, seed 42, retrieval scored every epoch to
    pick the best checkpoint by val_mAP@10, one process per core, 20 % held out), the presets' contents
    (quick_test: one uncompiled epoch of a tiny demo model on 12 clips, retrieval only before and after;
    development: 3 epochs; production: 10 epochs, batches of 32, warmup, clipping, parallel decoding), and
    cv's --folds (default 5)."""
    from audiotrain.recipes.clap import cv, main

    cfg = clap_config([])
    assert (cfg.train.batch_size, cfg.train.eval_batch_size, cfg.train.seed, cfg.train.retrieval_every_epoch,
            cfg.train.processes, cfg.dataset.eval_fraction, cfg.dataset.train_split, cfg.dataset.num_workers) == (
        8, 8, 42, True, 0, 0.2, "train", 2)  # fmt: skip
    quick = clap_config(["--preset", "quick_test"])
    assert (quick.train.epochs, quick.train.batch_size, quick.train.eval_batch_size, quick.train.compile,
            quick.train.progress_bar, quick.train.retrieval_every_epoch, quick.dataset.max_tokens,
            quick.dataset.num_workers, quick.demo.clips, quick.demo.width) == (
        1, 4, 4, False, False, False, 24, 0, 12, 16)  # fmt: skip
    assert clap_config(["--preset", "development"]).train.epochs == 3
    production = clap_config(["--preset", "production"])
    assert (production.train.epochs, production.train.batch_size, production.train.eval_batch_size,
            production.task.warmup_steps, production.train.gradient_clip, production.dataset.num_workers) == (
        10, 32, 32, 100, 1.0, 4)  # fmt: skip
    folds = []
    monkeypatch.setattr(cv, "run_cross_validation", lambda cfg, n, argv, **_: folds.append(n))
    assert main(["cv", "--preset", "quick_test", "--demo.folder", str(tmp_path / "cache")]) == 0
    assert folds == [5]


@pytest.mark.parametrize(
    "argv, kept",
    [
        (["--overwrite", "false", "--x", "1"], ["--x", "1"]),
        (["--overwrite", "--x", "1"], ["--x", "1"]),
        (["--overwrite=true", "song.wav"], ["song.wav"]),
        (["--overwrite", "song.wav"], ["song.wav"]),  # a word that is no true/false is no value of it
    ],
)
def test_the_command_to_run_again_drops_overwrite_and_its_value(argv, kept):
    """The chord recipe repeats a command without ``--overwrite``: a value left behind (``false``) was a
    stray word in it."""
    assert without_overwrite(argv) == kept


def test_another_librarys_name_at_the_top_of_a_file_names_the_nested_setting(tmp_path):
    """A clap --config file's ``lr: 0.1`` (Hugging Face's, a script's) said "unknown field 'lr'" and no more:
    the alias table knew it as learning_rate, which clap holds in its task section."""
    from audiotrain.recipes.clap.config import ClapRecipeConfig

    for written, meant in (("lr", "task.learning_rate"), ("wd", "task.weight_decay")):
        path = tmp_path / "clap.yaml"
        path.write_text(f"{written}: 0.1\n")
        with pytest.raises(ValueError, match=rf"unknown field '{written}'; did you mean '{meant}'\?"):
            load_config_file(ClapRecipeConfig(), path)
