"""Hostile settings files (a FIFO, deeply nested or huge-integer JSON, YAML alias bombs, absurd sizes) are
refused at once, in one line naming the file and field: no hang, no traceback, no huge allocation."""

from __future__ import annotations

import json
import os
from pathlib import Path

from audiotrain.chords.lab import AnnotationError, read_jams
from audiotrain.models.clap.config import ClapConfig, ClapConfigError
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

