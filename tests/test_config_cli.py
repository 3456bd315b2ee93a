"""Dataclass configs as command-line flags and YAML/JSON files (audiotrain.recipes.config_cli)."""

import argparse
import json
from dataclasses import dataclass, field

from audiotrain.recipes.config_cli import (
    SettingsParser,
    add_dataclass_arguments,
    apply_arguments,
    load_config_file,
    merge_config,
)

import pytest


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
    with pytest.raises(ValueError, match="command line.*Inner.width must be >= 1"):
        apply_arguments(Outer(), args)


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
        with pytest.raises(SystemExit) as exit:
            main(argv)
        err = capsys.readouterr().err
        assert exit.value.code == 2 and "the presets are quick_test, development, production" in err
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


def test_a_recipe_config_file_may_list_its_loggers_and_a_typo_names_the_dotted_field(tmp_path):
    from audiotrain.recipes.chords.config import TrainingConfig

    file = tmp_path / "run.yaml"
    file.write_text("logger:\n  names: [tensorboard, csv]\n")
    assert load_config_file(TrainingConfig(), file).logger.names == "tensorboard,csv"
    file.write_text("logger:\n  nmes: csv\n")
    with pytest.raises(ValueError, match=r"unknown field 'logger.nmes'; did you mean 'logger.names'\?"):
        load_config_file(TrainingConfig(), file)
