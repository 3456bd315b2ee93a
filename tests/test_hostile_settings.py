"""Hostile settings files (a FIFO, deeply nested or huge-integer JSON, YAML alias bombs, absurd sizes) are
refused at once, in one line naming the file and field: no hang, no traceback, no huge allocation."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from audiotrain.chords.lab import AnnotationError, read_jams
from audiotrain.features.clap import ClapFeatureExtractor
from audiotrain.models.chord_model import ChordModelConfig
from audiotrain.models.clap.config import ClapConfig, ClapConfigError
from audiotrain.recipes.chords.cv import PROGRESS_FILE, _finished_folds, _songs_as_recorded
from audiotrain.recipes.chords.evaluate import EVALUATION_FILES, evaluation_outputs, run_test_songs
from audiotrain.recipes.chords.task import CHECKPOINT_KEY, stored_settings
from audiotrain.recipes.config_cli import load_config_data, merge_config
from audiotrain.recipes.split_record import run_record_of
from audiotrain.train.checkpoint import CheckpointError, read_state
from audiotrain.trainer_config import recorded_builds

import pytest
from fifo_waits import returns_without_waiting

DEEP = "[" * 5000 + "]" * 5000
HUGE_INT = "1" * 5000


def test_a_fifo_in_place_of_a_settings_file_is_refused_without_waiting(tmp_path: Path):
    os.mkfifo(tmp_path / "config.json")  # opening it for reading would wait for a writer forever
    with pytest.raises(ClapConfigError, match=r"config\.json: is a FIFO, not a regular file"):
        ClapConfig.from_json(tmp_path / "config.json")
    checkpoint = tmp_path / "checkpoints" / "last"
    checkpoint.mkdir(parents=True)
    with pytest.raises(ValueError, match=r"config\.json: is a FIFO"):
        run_record_of(checkpoint)  # a chords --resume reads RUN/config.json


@pytest.mark.parametrize(
    "text, reason", [(DEEP, "nested too deeply"), (f'{{"x": {HUGE_INT}}}', "4300 digits")]
)
def test_deep_or_huge_json_is_a_one_line_error_naming_the_file(tmp_path: Path, text: str, reason: str):
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(ClapConfigError, match=rf"config\.json: not valid JSON \(.*{reason}"):
        ClapConfig.from_json(tmp_path / "config.json")
    (tmp_path / "trainer_state.json").write_text(text)
    with pytest.raises(CheckpointError, match=rf"trainer_state\.json: not valid JSON \(.*{reason}"):
        read_state(tmp_path)
    (tmp_path / "song.jams").write_text(text)
    with pytest.raises(AnnotationError, match=rf"song\.jams: not valid JSON \(.*{reason}"):  # a listed skip
        read_jams(tmp_path / "song.jams")


def test_json_nesting_is_refused_past_one_depth_on_every_python(tmp_path: Path):
    """A file 5000 levels deep was refused on Python 3.10-3.12 (json's RecursionError) but read on 3.13, whose
    json goes to about 10,000 levels: a settings file then failed later and otherwise ("expected a JSON object,
    got list"). Past JSON_MAX_DEPTH it is refused on every version."""
    from audiotrain._files import JSON_MAX_DEPTH, parse_json

    def nested(depth: int) -> str:
        return "[" * depth + "]" * depth

    def objects(depth: int) -> str:
        return '{"a": ' * depth + "1" + "}" * depth

    assert parse_json(nested(JSON_MAX_DEPTH), "x.json", ValueError) is not None
    assert parse_json(objects(JSON_MAX_DEPTH).encode("utf-16"), "x.json", ValueError)["a"]  # (bytes: as json)
    # Brackets inside a text do not nest, and brackets side by side do not either.
    assert (
        parse_json(f'["{"[" * 9000}", {nested(JSON_MAX_DEPTH - 1)}]', "x.json", ValueError)[0] == "[" * 9000
    )
    assert len(parse_json("[" + ", ".join([nested(3)] * 9000) + "]", "x.json", ValueError)) == 9000
    for text in [nested(JSON_MAX_DEPTH + 1), objects(JSON_MAX_DEPTH + 1), nested(10_000)]:
        (tmp_path / "config.json").write_text(text)
        with pytest.raises(ClapConfigError, match=r"config\.json: not valid JSON \(nested too deeply\)$"):
            ClapConfig.from_json(tmp_path / "config.json")


def test_a_run_record_that_is_not_json_is_still_no_record(tmp_path: Path):
    checkpoint = tmp_path / "checkpoints" / "last"
    checkpoint.mkdir(parents=True)
    (tmp_path / "config.json").write_text(DEEP)
    assert run_record_of(checkpoint) is None
    (tmp_path / "config.json").write_text(json.dumps({"seed": 1}))
    assert run_record_of(checkpoint) == {"seed": 1}


def test_run_records_a_recipe_reads_again_are_read_as_settings_files(tmp_path: Path):
    """`evaluate --test_songs_of RUN`, `evaluate --overwrite` and `cv --resume RUN` read a JSON file the
    user points at: a deeply nested one gave a raw RecursionError traceback, a FIFO hung the command."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(DEEP)
    (run / "scores.json").write_text(DEEP)
    (run / PROGRESS_FILE).write_text(DEEP)
    no_record = rf"--test_songs_of {run}: {run / 'config.json'} is missing or lists no test songs"
    with pytest.raises(ValueError, match=no_record):
        run_test_songs(run, tmp_path, [], {})
    assert evaluation_outputs(run)[: len(EVALUATION_FILES)] == list(EVALUATION_FILES)
    with pytest.raises(ValueError, match=rf"--resume {run}: not a cv run folder \(cv_progress\.json"):
        _finished_folds(run / PROGRESS_FILE, {})
    assert _songs_as_recorded([], "songs", run / PROGRESS_FILE, "data") == ([], "songs", "")
    for name in ("config.json", "scores.json", PROGRESS_FILE):
        (run / name).unlink()
        os.mkfifo(run / name)
    with pytest.raises(ValueError, match=no_record):
        returns_without_waiting(lambda: run_test_songs(run, tmp_path, [], {}), run / "config.json", 10)
    returns_without_waiting(lambda: evaluation_outputs(run), run / "scores.json", 10)
    with pytest.raises(ValueError, match="not a cv run folder"):
        returns_without_waiting(lambda: _finished_folds(run / PROGRESS_FILE, {}), run / PROGRESS_FILE, 10)


def _alias_tree(levels: int) -> str:
    """A "billion laughs" YAML under `seed`: each level lists the one before nine times (9**levels strings)."""
    lines = ["seed:", '  l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_yaml_aliases_expanding_to_billions_of_values_are_refused_at_once(tmp_path: Path):
    (tmp_path / "laughs.yaml").write_text(_alias_tree(9))  # 1 KB; 9**9 values once expanded
    with pytest.raises(
        ValueError, match=r"laughs\.yaml: holds more than 100000 values \(its YAML aliases, \*name, counted"
    ):
        load_config_data(tmp_path / "laughs.yaml")
    (tmp_path / "loop.yaml").write_text("seed: &a [*a]\n")
    with pytest.raises(ValueError, match=r"loop\.yaml: a YAML alias refers to a value that holds it"):
        load_config_data(tmp_path / "loop.yaml")


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_a_huge_integer_is_named_as_such_without_python_advice(tmp_path: Path, suffix: str):
    """The error passed on Python's "use sys.set_int_max_str_digits() to increase the limit", which someone
    running a command cannot act on."""
    (tmp_path / f"run{suffix}").write_text(f'{{"seed": {HUGE_INT}}}')
    with pytest.raises(ValueError) as caught:
        load_config_data(tmp_path / f"run{suffix}")
    assert str(caught.value).endswith(
        f"run{suffix}: not valid {suffix[1:].upper()} (an integer of more than 4300 digits)"
    )
    assert "sys." not in str(caught.value)


@pytest.mark.parametrize(
    "text", ["seed: " + "[" * 5000 + "]" * 5000, "".join(" " * i + "a:\n" for i in range(3000))]
)
def test_yaml_nested_too_deeply_is_one_line_naming_the_file(tmp_path: Path, text: str):
    (tmp_path / "deep.yaml").write_text(text)
    with pytest.raises(ValueError, match=r"^\S*deep\.yaml: not valid YAML \(nested too deeply\)$"):
        load_config_data(tmp_path / "deep.yaml")


def test_a_yaml_syntax_error_names_the_file_and_its_line(tmp_path: Path):
    """The message starts with the file, and PyYAML's own mark names it too (not "<unicode string>")."""
    path = tmp_path / "bad.yaml"
    path.write_text("seed: 1\nlr: [1, 2\n")
    with pytest.raises(ValueError) as raised:
        load_config_data(path)
    assert str(raised.value).startswith(f"{path}: not valid YAML: ")
    assert f'in "{path}", line 2' in str(raised.value)


def test_a_large_plain_yaml_config_is_read_fast_and_refused_for_its_size_not_for_aliases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Plain keys (300,000: 4.5 MB, no alias) took 71 s with PyYAML's pure-Python parser, run twice, and were
    refused as aliases that expand too far; a 5 MB comment took 5 s. What made it fast is checked, not a time
    (timings here are noisy): each file is parsed once, by libyaml where PyYAML has it."""
    import yaml

    composed: list[Any] = []
    compose = yaml.compose

    def counting_compose(stream: Any, Loader: Any) -> Any:  # noqa: N803 (PyYAML's own keyword)
        composed.append(Loader)
        return compose(stream, Loader=Loader)

    monkeypatch.setattr(yaml, "compose", counting_compose)
    (tmp_path / "many.yaml").write_text("".join(f"k{i}: {i}\n" for i in range(60_000)))
    (tmp_path / "comment.yaml").write_text("# " + "x" * 5_000_000 + "\nseed: 1\n")
    with pytest.raises(
        ValueError, match=r"many\.yaml: holds more than 100000 values; a config holds"
    ) as caught:
        load_config_data(tmp_path / "many.yaml")
    assert "alias" not in str(caught.value)
    assert load_config_data(tmp_path / "comment.yaml") == {"seed": 1}
    fast = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
    assert composed == [fast, fast]
    assert yaml.__with_libyaml__  # (PyYAML's wheels bundle libyaml on Linux and macOS)


def test_a_wrong_value_is_quoted_shortened_in_the_message(tmp_path: Path):
    @dataclasses.dataclass
    class Config:
        seed: int = 0

    (tmp_path / "small.yaml").write_text(_alias_tree(4))  # within the limit: refused for its type
    with pytest.raises(ValueError, match=r"small\.yaml: field 'seed' must be int, got \{'l0'") as raised:
        merge_config(Config(), load_config_data(tmp_path / "small.yaml"), source=str(tmp_path / "small.yaml"))
    assert len(str(raised.value)) < 600


@pytest.mark.parametrize(
    "section, name, value, expected",
    [
        ("text_config", "num_hidden_layers", 100_000, "at most 128"),
        ("audio_config", "depths", [10**6, 1], "at most 64"),
        ("text_config", "max_position_embeddings", 10**9, "at most 65536"),
        ("audio_config", "spec_size", 16 * 2**20, "at most 1024"),
        ("text_config", "vocab_size", 10**12, "at most 1048576"),
        ("audio_config", "mlp_ratio", -1, "from 0.001 to 64"),
        ("text_config", "layer_norm_eps", float("-inf"), "from 1e-30 to 1"),
        ("text_config", "hidden_dropout_prob", 7.0, r"from 0 to 1 \(excluded\)"),
    ],
)
def test_absurd_clap_settings_are_refused_before_building(tmp_path: Path, section, name, value, expected):
    (tmp_path / "config.json").write_text(json.dumps({section: {name: value}}))
    with pytest.raises(
        ClapConfigError, match=rf"config\.json: {section}\.{name}: expected .*{expected}, got"
    ):
        ClapConfig.from_json(tmp_path / "config.json")


def test_an_absurd_fft_window_is_refused_before_the_filterbank_is_built():
    with pytest.raises(
        ValueError, match=r"pre\.json: fft_window_size: expected at most 65536, got 17179869184"
    ):
        ClapFeatureExtractor.from_dict({"fft_window_size": 2**34}, source="pre.json")


@pytest.mark.parametrize(
    "name, value", [("n_layers", 100_000), ("d_model", 10**9), ("context_frames", 10**8)]
)
def test_absurd_chord_model_sizes_are_refused_before_building(name: str, value: int):
    with pytest.raises(ValueError, match=rf"ChordModelConfig\.{name} must be at most \d+, got {value}"):
        ChordModelConfig(**{name: value})


def test_an_absurd_stored_window_is_named_with_its_file(tmp_path: Path):
    state = {"module_state": {CHECKPOINT_KEY: {"window_frames": 10**9}}}
    with pytest.raises(
        CheckpointError, match=r"trainer_state\.json: .*window_frames must be an int from 2 to 4096"
    ):
        stored_settings(tmp_path, state)


def test_a_run_folders_config_yaml_is_read_for_its_builds_as_any_yaml_config_is(tmp_path: Path):
    """recorded_builds (a create_trainer run resumed in its folder) read config.yaml again with plain
    yaml.safe_load: no limit on its values, where every other YAML read refuses a file that holds more."""
    record = tmp_path / "config.yaml"
    record.write_text("seed: 1\nbuilds: ['0.1.0+gearlier']\n")
    assert recorded_builds(record) == ["0.1.0+gearlier"]
    record.write_text(_alias_tree(9) + "builds: ['0.1.0+gearlier']\n")  # 9**9 values once expanded
    with pytest.raises(ValueError, match="holds more than 100000 values"):
        load_config_data(record)
    assert recorded_builds(record) is None  # unreadable as a config, so no record of builds
