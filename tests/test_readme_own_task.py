"""The README's "Your own audio task" example runs as written."""

import contextlib
import io
import re
from pathlib import Path

import audiotrain  # noqa: F401  (before mlx)

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import soundfile as sf


def test_the_readme_own_task_example_loads_skips_computes_features_and_scores(tmp_path, monkeypatch):
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("### Your own audio task", 1)[1].split("\n### ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    paths, labels = [], []
    for i in range(6):  # 0.5 to 1.3 s at 22.05 kHz, read as 1 s at 16 kHz
        sf.write(f"clip{i}.wav", 0.1 * rng.standard_normal(11025 + 3000 * i), 22050)
        paths.append(Path(f"clip{i}.wav"))
        labels.append(i % 3)
    Path("notes.wav").write_text("not audio")
    paths.append(Path("notes.wav"))
    labels.append(0)
    head = nn.Linear(40, 3)
    namespace = {"paths": paths, "labels": labels, "model": lambda x: head(mx.mean(x, axis=-1))}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), namespace)
    assert "skipped 1 audio file:\n  1 not_audio: notes.wav: file is not audio" in out.getvalue()
    assert len(namespace["clips"]) == 6
    assert namespace["scores"].shape == (6, 3)
    assert namespace["compute_confusion_matrix"](namespace["scores"], namespace["targets"]).sum() == 6


def test_the_readme_pos_weight_loss_is_torchs_also_for_soft_targets():
    # Widened beat targets and label smoothing give targets between 0 and 1, where a weight on the whole
    # elementwise loss (1 + (w - 1) * y) is not torch's pos_weight, which weighs the positive term alone.
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("### Your own audio task", 1)[1].split("\n### ", 1)[0]
    said = re.search(r"BCEWithLogitsLoss\(pos_weight=w\)` for rare tags is\s+`([^`]+)`", section)
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((4, 2)).astype(np.float32)
    y = np.array([[0.5, 0], [1, 0.5], [0, 0], [0.5, 1]], np.float32)
    w = np.array([5.0, 20.0], np.float32)

    class Task:
        pos_weight = mx.array(w)

    loss = eval(
        said.group(1), {"mx": mx, "nn": nn, "self": Task(), "logits": mx.array(logits), "y": mx.array(y)}
    )
    # torch.nn.BCEWithLogitsLoss(pos_weight=w): -(w * y * log(sigmoid(x)) + (1 - y) * log(1 - sigmoid(x)))
    log_p, log_not_p = -np.logaddexp(0, -logits), -np.logaddexp(0, logits)
    torchs = np.mean(-(w * y * log_p + (1 - y) * log_not_p))
    assert abs(loss.item() - torchs) < 1e-5


def test_the_readme_feature_cache_for_your_own_task_computes_once(tmp_path):
    # The README's "Your own audio task" named no way to keep a task's own features between runs; it now
    # gives FeatureCache's two calls, run here as written.
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("### Your own audio task", 1)[1].split("\n### ", 1)[0]
    made = re.search(r"`(cache = FeatureCache\([^`]+\))`", section).group(1)
    read = re.search(r"`(features = cache\.get_or_compute\([^`]+\))`", section).group(1)
    path = tmp_path / "song.wav"
    sf.write(path, np.zeros(2205), 22050)
    calls = []

    def compute(path):
        calls.append(path)
        return np.ones((4, 5), np.float32)

    from audiotrain.features import FeatureCache

    for _ in range(2):
        namespace = {
            "FeatureCache": FeatureCache,
            "root": tmp_path / "cache",
            "path": path,
            "compute": compute,
        }
        exec(f"{made}\n{read}", namespace)
        assert namespace["features"].shape == (4, 5)
    assert calls == [path]
