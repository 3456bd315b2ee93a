"""The run folder's PNGs read at a glance: labelled axes, paired train/val curves, a confusion matrix that
states its normalisation and support, score bars with their values and chance level."""

from audiotrain.chords.vocabulary import CHORD_TYPES
from audiotrain.metrics.plots import (
    EPOCH_LABEL,
    confusion_matrix_figure,
    history_figure,
    plot_confusion_matrix,
    plot_score_bars,
    plot_training_curves,
    score_bars_figure,
    training_curves_figure,
)

import numpy as np
import pytest
from matplotlib import image

CHORD_HISTORY = {
    "epoch": [0, 1, 2],
    "step": [10, 20, 30],
    "learning_rate": [1e-3, 8e-4, 5e-4],
    "train_loss": [7.0, 5.0, 4.0],
    "val_loss": [7.5, None, 4.5],
    **{
        f"{split}_{head}_loss": [3.0, 2.0, 1.5]
        for split in ("train", "val")
        for head in ("root", "bass_note")
    },
    **{
        f"{split}_{head}_acc": [0.1, 0.3, 0.5] for split in ("train", "val") for head in ("root", "bass_note")
    },
}


def _lines_by_label(ax):
    return {line.get_label(): line for line in ax.get_legend().get_lines()}


def test_training_curves_label_every_axis_and_pair_train_with_validation(tmp_path):
    figure = training_curves_figure(CHORD_HISTORY)
    axes = figure.get_axes()
    assert [ax.get_title() for ax in axes] == ["total loss", "loss of each part", "accuracy", "learning rate"]
    for ax in axes:
        assert ax.get_xlabel() == EPOCH_LABEL and "from 0" in EPOCH_LABEL
        assert ax.get_ylabel(), ax.get_title()
    assert axes[2].get_ylabel() == "accuracy (fraction)"

    parts = axes[1]
    train_root, train_bass, val_root, val_bass = parts.get_lines()  # in the history's order
    assert train_root.get_color() == val_root.get_color() != train_bass.get_color() == val_bass.get_color()
    assert {line.get_linestyle() for line in (train_root, train_bass)} == {"-"}
    assert {line.get_linestyle() for line in (val_root, val_bass)} == {"--"}
    assert set(_lines_by_label(parts)) == {"root loss", "bass note loss", "train", "validation"}
    # Epochs are plotted as the history counts them (from 0); the epoch without validation is skipped.
    assert list(axes[0].get_lines()[0].get_xdata()) == [0, 1, 2]
    assert list(axes[0].get_lines()[1].get_xdata()) == [0, 2]

    assert image.imread(plot_training_curves(CHORD_HISTORY, tmp_path / "curves.png")).shape[1] > 1000
    with pytest.raises(ValueError, match="no loss, accuracy or learning-rate"):
        training_curves_figure({"epoch": [1]})


def test_curves_are_drawn_against_the_historys_epoch_column_not_its_row_numbers():
    """A history whose rows are not epochs 0, 1, 2... (one row every other epoch) is drawn at its epochs."""
    history = {"epoch": [0, 2, 4], "train_loss": [3.0, 2.0, 1.0], "val_loss": [3.5, None, 1.5]}
    total = training_curves_figure(history).get_axes()[0]
    assert [list(line.get_xdata()) for line in total.get_lines()] == [[0, 2, 4], [0, 4]]


def test_history_figure_draws_a_chance_line_per_metric():
    history = {"epoch": [0, 1], "val_mAP@10": [0.3, 0.5], "val_text_to_audio_R@1": [0.1, 0.4]}
    chance = {"val_mAP@10": 0.12, "val_text_to_audio_R@1": 1 / 24}
    ax = history_figure(
        history, ["val_mAP@10", "val_text_to_audio_R@1"], ylabel="retrieval score", chance=chance
    ).get_axes()[0]
    assert ax.get_ylabel() == "retrieval score" and ax.get_xlabel() == EPOCH_LABEL
    dotted = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert sorted(line.get_ydata()[0] for line in dotted) == pytest.approx(sorted(chance.values()))
    assert "chance level" in _lines_by_label(ax)
    with pytest.raises(ValueError, match="history has none of"):
        history_figure(history, ["train_loss"], ylabel="loss")


def test_confusion_matrix_states_normalisation_and_support(tmp_path, rng):
    names = ["N", "maj", "min", "dim", "aug"]
    matrix = np.array(
        [
            [8, 2, 0, 0, 0],
            [1, 30, 0, 0, 0],
            [0, 0, 0, 0, 0],  # "min": never true, never predicted -> left out
            [0, 0, 0, 0, 0],  # "dim": never true, but predicted once below -> an n=0 row
            [0, 3, 0, 1, 6],
        ]
    )
    ax = confusion_matrix_figure(matrix, names, title="Chord type (frames)", unit="frames").get_axes()[0]
    title = ax.get_title()
    assert "row-normalised: each row sums to 1 over the true class" in title
    assert "1 of 5 classes neither true nor predicted: not shown" in title
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert rows == ["N  n=10", "maj  n=31", "dim  n=0", "aug  n=10"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["N", "maj", "dim", "aug"]
    assert ax.get_xlabel() == "predicted class" and "frames" in ax.get_ylabel()
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    assert cells[(0, 0)] == "0.80" and cells[(3, 3)] == "0.60" and not any(r == 2 for r, _ in cells)
    # The colours too: each row is its true class's fractions (the diagonal and the numbers printed on the
    # cells look alike transposed or column-normalised; the image and an off-diagonal cell do not).
    shown = matrix[np.ix_([0, 1, 3, 4], [0, 1, 3, 4])]
    colours = ax.images[0].get_array()
    assert colours.mask[2].all() and not colours.mask[[0, 1, 3]].any()  # the n=0 row, grey
    true = [0, 1, 3]
    np.testing.assert_allclose(colours[true], shown[true] / shown[true].sum(1, keepdims=True))
    assert cells[(3, 1)] == "0.30" and cells[(0, 1)] == "0.20"  # aug read as maj, N read as maj

    counts = confusion_matrix_figure(matrix, names, normalize=False).get_axes()[0]
    assert "counts" in counts.get_title() and "row-normalised" not in counts.get_title()

    large = plot_confusion_matrix(rng.integers(1, 20, (32, 32)), CHORD_TYPES, tmp_path / "plots" / "c.png")
    assert image.imread(large).shape[0] > 200
    with pytest.raises(ValueError, match="one name per class"):
        confusion_matrix_figure(np.eye(3), ["a", "b"])


def test_score_bars_carry_their_values_and_the_chance_level(tmp_path):
    n_clips = 20
    before = {"R@1": 0.1, "R@5": 0.4, "mAP@10": 0.25}
    after = {"R@1": 0.35, "R@5": 0.8, "mAP@10": 0.5}
    chance = {"R@1": 1 / n_clips, "R@5": 5 / n_clips}
    ax = score_bars_figure(
        {"before": before, "after": after}, ["R@1", "R@5", "mAP@10", "absent"], chance=chance
    ).get_axes()[0]
    assert ax.get_ylabel() and ax.get_xlabel()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["R@1", "R@5", "mAP@10"]
    values = sorted(t.get_text() for t in ax.texts)
    assert values == sorted(f"{v:.2f}" for v in [*before.values(), *after.values()])
    (segments,) = [c for c in ax.collections if c.get_label() == "chance (random ranking)"]
    levels = [seg[0][1] for seg in segments.get_segments()]
    assert levels == pytest.approx([1 / n_clips, 5 / n_clips])
    path = plot_score_bars({"before": before}, ["R@1"], tmp_path / "bars.png")
    assert image.imread(path).shape[0] > 200


def test_a_recipe_command_with_a_home_it_cannot_write_plots_without_matplotlibs_warnings(tmp_path):
    """With a read-only HOME matplotlib printed 'mkdir -p failed for path ~/.config/matplotlib' and 'Matplotlib
    created a temporary cache directory ... it is highly recommended to set the MPLCONFIGDIR environment
    variable' into the run's output. A recipe command points MPLCONFIGDIR at a temporary folder first."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    home = tmp_path / "home"
    home.write_text("a HOME in which nothing can be made (root ignores a read-only folder's mode)")
    (tmp_path / "plotting_cli.py").write_text(  # a recipe's cli module whose command plots, as a run's end
        "import os\nfrom audiotrain.metrics.plots import plot_training_curves\n\n\ndef main():\n"
        f"    plot_training_curves({{'epoch': [0, 1], 'train_loss': [2.0, 1.0]}}, {str(tmp_path / 'c.png')!r})\n"
        "    print(os.environ['MPLCONFIGDIR'])\n    return 0\n"
    )
    env = {
        k: v for k, v in os.environ.items() if k not in ("MPLCONFIGDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")
    }
    env["HOME"] = str(home)
    repo = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join([str(repo), str(tmp_path), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from audiotrain._system import run_recipe_command as run; run('plotting_cli')",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert (tmp_path / "c.png").is_file() and not Path(done.stdout.strip()).exists()  # removed at exit


class _Trained:
    """What the chord recipe's _write_training_outputs reads of its Trainer."""

    history = {"train_loss": [1.0, 0.5]}
    interrupted_checkpoint = None
    current_epoch, batch_in_epoch, global_step = 2, 0, 4

    def export_history(self, path, overwrite):
        path.write_text("{}")
        return path


def test_a_run_whose_matplotlib_cannot_load_goes_on_without_its_plots(tmp_path, monkeypatch):
    # Under `ulimit -v` matplotlib's libraries failed to map once training had taken the memory: the chord run
    # ended in that ImportError after its checkpoints were saved, before its evaluation and summary.
    import sys

    from audiotrain.metrics.plot_loading import load_plots
    from audiotrain.recipes.chords.train import _write_training_outputs
    from audiotrain.recipes.clap.report import write_plots

    monkeypatch.setitem(sys.modules, "audiotrain.metrics.plots", None)  # (its import then raises ImportError)
    with pytest.warns(
        UserWarning, match=r"plots not written: matplotlib could not be loaded \(ModuleNotFoundError"
    ):
        assert load_plots() is None
    # What a memory limit gives as the libraries load, besides that ImportError.
    for error in (OSError("failed to map segment from shared object"), MemoryError()):

        def failing_import(name, error=error):
            raise error

        monkeypatch.setattr("importlib.import_module", failing_import)
        with pytest.warns(UserWarning, match=rf"matplotlib could not be loaded \({type(error).__name__}"):
            assert load_plots() is None
        monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "audiotrain.metrics.plots", None)
    with pytest.warns(UserWarning, match="plots not written"):
        assert write_plots({"train_loss": [1.0, 0.5]}, {}, tmp_path / "plots") == []

    lines = []
    with pytest.warns(UserWarning, match="plots not written"):
        _write_training_outputs(_Trained(), tmp_path, tmp_path / "best", 1.0, lines.append)
    assert not (tmp_path / "training_curves.png").exists() and any("history" in line for line in lines)


def test_audiotrain_plots_off_writes_no_figure_and_loads_no_matplotlib(tmp_path, monkeypatch):
    """AUDIOTRAIN_PLOTS=0 (sweeps, headless clusters: the figures cost seconds per run) turns the recipes'
    PNGs off, matplotlib not imported; a resumed run's earlier figures (of an older history) go with them."""
    import sys
    import warnings

    from audiotrain.metrics.plot_loading import load_plots, plots_wanted
    from audiotrain.recipes.chords.train import _write_training_outputs
    from audiotrain.recipes.clap.report import write_plots

    for on in (None, "", "1", "TRUE", " on ", "Yes"):
        if on is None:
            monkeypatch.delenv("AUDIOTRAIN_PLOTS", raising=False)
        else:
            monkeypatch.setenv("AUDIOTRAIN_PLOTS", on)
        assert plots_wanted(), on
    monkeypatch.setitem(sys.modules, "audiotrain.metrics.plots", None)  # (an import of it raises)
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "loss.png").write_bytes(b"earlier")
    (tmp_path / "training_curves.png").write_bytes(b"earlier")
    for off in ("0", "false", "NO", "Off"):
        monkeypatch.setenv("AUDIOTRAIN_PLOTS", off)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # (no "matplotlib could not be loaded": it was not tried)
            assert not plots_wanted() and load_plots() is None
            assert write_plots({"train_loss": [1.0, 0.5]}, {}, plots) == []

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _write_training_outputs(_Trained(), tmp_path, tmp_path / "best", 1.0, lambda line: None)
    assert sorted(tmp_path.rglob("*.png")) == [] and (tmp_path / "history.json").is_file()


def test_a_bad_audiotrain_plots_value_is_refused_naming_the_accepted_ones(monkeypatch):
    from audiotrain.metrics.plot_loading import load_plots

    monkeypatch.setenv("AUDIOTRAIN_PLOTS", "maybe")
    accepted = r"AUDIOTRAIN_PLOTS='maybe' is neither on \(1, true, yes, on\) nor off \(0, false, no, off\)"
    with pytest.raises(ValueError, match=accepted):
        load_plots()


def test_a_users_mplconfigdir_stays_and_an_unwritable_home_gets_a_private_one(tmp_path, monkeypatch):
    """`private_matplotlib_folder_unless_writable`, a recipe command's first line, without a subprocess: the
    user's MPLCONFIGDIR is theirs even where matplotlib's folders cannot be made, and a folder the process may
    not write in (a read-only HOME, whatever root's permission bits say) is not taken as writable."""
    import os
    from pathlib import Path

    from audiotrain import _system

    for variable in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(variable, str(tmp_path))
    monkeypatch.setattr(_system.os, "access", lambda path, mode: False)  # (nothing writable)
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "mine"))
    _system.private_matplotlib_folder_unless_writable()
    assert os.environ["MPLCONFIGDIR"] == str(tmp_path / "mine")

    monkeypatch.delenv("MPLCONFIGDIR")
    _system.private_matplotlib_folder_unless_writable()
    private = Path(os.environ["MPLCONFIGDIR"])
    assert private.is_dir() and private.name.startswith("matplotlib-")


def test_curves_of_accuracy_and_lr_columns_and_a_total_loss_legend_that_names_each_split():
    """A history with ``*_accuracy`` and ``lr`` columns (not ``*_acc`` / ``learning_rate``) gets those panels,
    an accuracy that reaches 1.0 is a fraction, and the total loss panel says which line is validation."""
    history = {
        "epoch": [0, 1, 2],
        "train_loss": [3.0, 2.0, 1.0],
        "val_loss": [3.5, 2.5, 1.5],
        "train_accuracy": [0.2, 0.6, 1.0],
        "lr": [1e-3, 1e-3, 1e-4],
    }
    total, accuracy, learning_rate = training_curves_figure(history).get_axes()
    assert [ax.get_title() for ax in (total, accuracy, learning_rate)] == [
        "total loss",
        "accuracy",
        "learning rate",
    ]
    assert accuracy.get_ylabel() == "accuracy (fraction)"
    assert set(_lines_by_label(total)) == {"loss", "train", "validation"}
    assert learning_rate.get_legend() is None  # a lone curve: its y label says what it is
    in_percent = training_curves_figure({"epoch": [0, 1], "val_accuracy": [60.0, 85.0]}).get_axes()[0]
    assert in_percent.get_ylabel() == "accuracy (%)"
    without_epochs = training_curves_figure({"train_loss": [3.0, 2.0, 1.0]}).get_axes()[0]
    assert without_epochs.get_xlabel() == "history row (from 0)"


def test_history_figure_draws_chance_only_where_given_and_refuses_columns_without_values():
    history = {"epoch": [0, 1], "val_mAP@10": [0.3, 0.5], "val_loss": [2.0, 1.0], "val_none": [None, None]}
    ax = history_figure(
        history, ["val_mAP@10", "val_loss"], ylabel="score", chance={"val_mAP@10": 0.1}
    ).get_axes()[0]
    dotted = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert [line.get_ydata()[0] for line in dotted] == [pytest.approx(0.1)]
    with pytest.raises(ValueError, match="history has none of"):
        history_figure(history, ["val_none"], ylabel="score")


def test_a_normalised_confusion_matrix_colours_fractions_from_0_to_1():
    """Colours relative to the largest fraction would paint a row of 0.4 as dark as a perfect row."""
    matrix = np.array([[4, 6], [6, 4]])
    assert confusion_matrix_figure(matrix, ["a", "b"]).get_axes()[0].images[0].get_clim() == (0, 1)


def test_a_plot_is_written_in_the_format_its_file_name_says(tmp_path):
    history = {"epoch": [0, 1], "train_loss": [2.0, 1.0]}
    assert plot_training_curves(history, tmp_path / "c.png").read_bytes().startswith(b"\x89PNG")
    assert b"<svg" in plot_training_curves(history, tmp_path / "c.svg").read_bytes()[:1000]


def test_a_confusion_matrix_figure_does_not_show_the_processs_earlier_warnings_again():
    """Each chord run of a sweep draws a confusion matrix, and a warning Python shows once per place (a
    user's data warning) came again after it: matplotlib's set_ticklabels resets every module's registry
    of warnings shown (warnings.catch_warnings)."""
    import warnings

    from audiotrain.metrics.plots import confusion_matrix_figure

    matrix = np.arange(9, dtype=float).reshape(3, 3)
    confusion_matrix_figure(matrix, ["a", "b", "c"])  # (the first imports what it needs)
    registry: dict = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(2):
            warnings.warn_explicit(
                "a warning of the user's data", UserWarning, "prepare.py", 7, registry=registry
            )
            confusion_matrix_figure(matrix, ["a", "b", "c"])
    assert [str(w.message) for w in caught] == ["a warning of the user's data"]
