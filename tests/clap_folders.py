"""Tiny CLAP inputs the CLAP tests share: a Hugging Face CLAP folder (tests/fixtures/clap_tiny, its front end
fitted to the tiny audio tower) and a folder of captioned tones."""

import json
from pathlib import Path

import numpy as np
import pytest


def tiny_checkpoint(tmp_path) -> Path:
    """tests/fixtures/clap_tiny (a tiny random Hugging Face ClapModel folder) copied to TMP/ckpt, its front
    end fitted to the tiny audio tower (`fit_front_end`)."""
    import shutil

    fixture = Path(__file__).parent / "fixtures" / "clap_tiny"
    if not (fixture / "config.json").is_file():
        pytest.skip("tests/fixtures/clap_tiny (written by tests/fixtures/make_clap_fixture.py) is missing")
    checkpoint = tmp_path / "ckpt"
    shutil.copytree(fixture, checkpoint)
    fit_front_end(checkpoint)
    return checkpoint


def fit_front_end(checkpoint: Path) -> None:
    """The tiny model folds at most 256 frames: 2.5 s windows (251 frames at hop 480) instead of 10 s."""
    pre = json.loads((checkpoint / "preprocessor_config.json").read_text())
    pre.update(max_length_s=2.5, nb_max_samples=120000)
    (checkpoint / "preprocessor_config.json").write_text(json.dumps(pre))


def tone_folder(root: Path, clips: int = 6) -> Path:
    """`clips` one-second tones at 16 kHz, each with a one-line caption beside it."""
    import soundfile as sf

    root.mkdir()
    t = np.arange(16000) / 16000
    for i in range(clips):
        sf.write(
            root / f"tone{i}.wav", (0.3 * np.sin(2 * np.pi * (200 + 100 * i) * t)).astype(np.float32), 16000
        )
        (root / f"tone{i}.txt").write_text(f"a sine tone number {i}\n")
    return root
