"""Hostile settings files (a FIFO, deeply nested or huge-integer JSON, YAML alias bombs, absurd sizes) are
refused at once, in one line naming the file and field: no hang, no traceback, no huge allocation."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from audiotrain.chords.lab import AnnotationError, read_jams
from audiotrain.models.clap.config import ClapConfig, ClapConfigError
from audiotrain.recipes.config_cli import load_config_data, merge_config
from audiotrain.recipes.split_record import run_record_of
from audiotrain.train.checkpoint import CheckpointError, read_state

import pytest

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


def test_a_run_record_that_is_not_json_is_still_no_record(tmp_path: Path):
    checkpoint = tmp_path / "checkpoints" / "last"
    checkpoint.mkdir(parents=True)
    (tmp_path / "config.json").write_text(DEEP)
    assert run_record_of(checkpoint) is None
    (tmp_path / "config.json").write_text(json.dumps({"seed": 1}))
    assert run_record_of(checkpoint) == {"seed": 1}


def _alias_tree(levels: int) -> str:
    """A "billion laughs" YAML under `seed`: each level lists the one before nine times (9**levels strings)."""
    lines = ["seed:", '  l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_yaml_aliases_expanding_to_billions_of_values_are_refused_at_once(tmp_path: Path):
    (tmp_path / "laughs.yaml").write_text(_alias_tree(9))  # 1 KB; 9**9 values once expanded
    with pytest.raises(ValueError, match=r"laughs\.yaml: its YAML aliases \(\*name\) expand to more than"):
        load_config_data(tmp_path / "laughs.yaml")
    (tmp_path / "loop.yaml").write_text("seed: &a [*a]\n")
    with pytest.raises(ValueError, match=r"loop\.yaml: a YAML alias refers to a value that holds it"):
        load_config_data(tmp_path / "loop.yaml")


def test_a_wrong_value_is_quoted_shortened_in_the_message(tmp_path: Path):
    @dataclasses.dataclass
    class Config:
        seed: int = 0

    (tmp_path / "small.yaml").write_text(_alias_tree(4))  # within the limit: refused for its type
    with pytest.raises(ValueError, match=r"small\.yaml: field 'seed' must be int, got \{'l0'") as raised:
        merge_config(Config(), load_config_data(tmp_path / "small.yaml"), source=str(tmp_path / "small.yaml"))
    assert len(str(raised.value)) < 600
