"""The progress bar, as a user sees it in a terminal and in a log file."""

import copy
import io
import pickle
import re
import sys

from audiotrain import DataLoader, Trainer
from audiotrain.train.callbacks import Callback, TQDMProgressBar
from audiotrain.train.progress import PLAIN_LINE_WIDTH, ProgressBar

import mlx.core as mx
import pytest
from tasks import RecordingLogger, TinyClassifier, make_batches, make_data
from terminals import a_terminal


def fit_with(tmp_path, bar, module=None, callbacks=(), **kw):
    mx.random.seed(0)
    trainer = Trainer(
        compile=False,
        enable_checkpointing=bool(callbacks),
        default_root_dir=tmp_path,
        callbacks=[bar, *callbacks],
        enable_model_summary=False,  # (the bar's lines alone on stderr)
        **kw,
    )
    trainer.fit(module or TinyClassifier(), make_batches(64), make_batches(32, seed=1))
    return trainer


def log_lines(err: str) -> list[str]:
    """The progress lines of a log, each with the indented lines it goes on in joined to it."""
    return re.sub(r"\n  ", " ", err.strip()).splitlines()


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_log_gets_one_line_per_epoch_with_the_numbers(tmp_path, capsys):
    trainer = fit_with(tmp_path, ProgressBar(), max_epochs=3)  # capsys: stderr is not a terminal
    err = capsys.readouterr().err
    assert "\r" not in err  # no live bar: a log file keeps every redraw
    lines = err.strip().splitlines()
    assert len(lines) == 3
    for epoch, line in enumerate(lines):
        assert re.match(rf"Epoch {epoch}: 4/4 batches, \d+\.\d s, loss=[\d.]+, .*val_loss=[\d.]+", line), line
    last_val = trainer.history["val_loss"][-1]
    assert f"val_loss={last_val:.4g}" in lines[-1]


def test_a_log_gets_a_line_per_validation_inside_an_epoch(tmp_path, capsys):
    fit_with(tmp_path, ProgressBar(), max_epochs=1, val_check_interval=0.5)
    lines = log_lines(capsys.readouterr().err)
    assert [line.split(":")[0] for line in lines] == ["Epoch 0 (means so far), validation", "Epoch 0"]
    assert lines[0].startswith("Epoch 0 (means so far), validation: 2/4 batches")


def test_a_line_after_a_validation_inside_an_epoch_shows_the_epochs_means_so_far(tmp_path, capsys):
    """It showed the last step's values where the epoch's own line shows means: the two did not compare."""
    logger = RecordingLogger()
    trainer = fit_with(
        tmp_path, ProgressBar(), max_epochs=1, val_check_interval=0.5, logger=logger, log_every_n_steps=2
    )
    inside, end = log_lines(capsys.readouterr().err)
    # Logged at step 2, the mean of steps 1 and 2: the epoch so far when it validates after 2 batches.
    step_2 = next(metrics for step, metrics in logger.metrics if step == 2 and "train_loss" in metrics)
    shown = _numbers(inside.split(" s, ")[1])
    assert shown["loss"] == float(f"{step_2['train_loss']:.4g}")
    assert shown["accuracy"] == float(f"{step_2['train_accuracy']:.4g}")
    assert _numbers(end.split(" s, ")[1])["loss"] == float(f"{trainer.history['train_loss'][0]:.4g}")


def test_a_terminal_gets_live_bars(tmp_path, monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    bar = ProgressBar()
    assert not bar.is_plain
    fit_with(tmp_path, bar, max_epochs=1)
    out = terminal.getvalue()
    assert "\r" in out and "Epoch 0: 100%" in out and "loss=" in out


def test_a_bars_count_moves_every_refresh_rate_batches_and_at_the_last_as_lightnings(tmp_path, monkeypatch):
    # Lightning 2.6.6, TQDMProgressBar(refresh_rate=3), 4 training and 2 validation batches: the bars' `n`
    # after each batch is 0, 0, 3, 4 and 0, 2 (its rule, `n % refresh_rate == 0 or n == total`; over 5
    # batches 0, 0, 3, 3, 5). Here the count moved every batch (1, 2, 3, 4), only the items after it every
    # refresh_rate batches.
    monkeypatch.setattr(sys, "stderr", Terminal())
    bar, counts = TQDMProgressBar(refresh_rate=3), {"train": [], "val": []}

    class Reads(Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            counts["train"].append(bar.train_progress_bar.n)

        def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx=0):
            counts["val"].append(bar.val_progress_bar.n)

    # (4 training batches of 16, 2 validation batches)
    fit_with(tmp_path, bar, callbacks=[Reads()], max_epochs=1, num_sanity_val_steps=0)
    assert counts == {"train": [0, 0, 3, 4], "val": [0, 2]}


def test_a_terminals_bar_of_an_epoch_resumed_mid_way_starts_at_the_checkpoints_batch(tmp_path, monkeypatch):
    from audiotrain.train.callbacks import ModelCheckpoint

    every_2 = ModelCheckpoint(dirpath=tmp_path / "ck", every_n_train_steps=2, save_top_k=-1)
    fit_with(tmp_path, ProgressBar(plain=True), max_epochs=1, callbacks=[every_2])  # 4 batches an epoch
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    mx.random.seed(0)
    Trainer(
        max_epochs=1,
        compile=False,
        default_root_dir=tmp_path,
        callbacks=[ProgressBar()],
        enable_model_summary=False,
    ).fit(
        TinyClassifier(),
        make_batches(64),
        make_batches(32, seed=1),
        ckpt_path=tmp_path / "ck" / "epoch=0-step=2",
    )
    frames = [f for f in terminal.getvalue().split("\r") if f.startswith("Epoch 0:")]
    assert "| 2/4 " in frames[0] and "| 4/4 " in frames[-1], frames


def test_plain_can_be_forced_either_way(tmp_path, capsys, monkeypatch):
    fit_with(tmp_path, ProgressBar(plain=False), max_epochs=1)
    assert "\r" in capsys.readouterr().err  # bars even in a log, when asked for
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert ProgressBar(plain=True).is_plain
    with pytest.raises(ValueError, match="plain must be True, False or None"):
        ProgressBar(plain="yes")


@pytest.mark.parametrize("refresh_rate", [0, -1, 1.5])
def test_a_refresh_rate_that_is_no_positive_int_is_refused(refresh_rate):
    """(0 was a ZeroDivisionError at the first batch of a terminal's bar.)"""
    with pytest.raises(ValueError, match=rf"refresh_rate must be a positive int, got {refresh_rate}$"):
        ProgressBar(refresh_rate=refresh_rate)


def test_a_terminals_bar_shows_a_validation_inside_an_epoch_at_once(tmp_path, monkeypatch):
    """A validation halfway through the epoch shows its val_loss on the epoch's bar when it ends, not at the
    next refresh (here none: refresh_rate is larger than the epoch) or the epoch's end."""
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    fit_with(tmp_path, ProgressBar(refresh_rate=100), max_epochs=1, val_check_interval=0.5)
    frames = [f for f in terminal.getvalue().split("\r") if f.startswith("Epoch 0:")]
    # (the count stays at 0/4 until the last batch under refresh_rate=100, as Lightning's)
    inside_the_epoch = [f for f in frames if "| 4/4 " not in f]
    assert any("val_loss=" in f for f in inside_the_epoch), frames


def _numbers(text: str) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r"(\w+)=([-\d.e+]+)", text)}


def test_an_epochs_line_shows_its_means_as_the_history_has_them_loss_and_val_loss_first(tmp_path, capsys):
    # The line used to show the last batch's loss and accuracy under the history's plain names.
    trainer = fit_with(tmp_path, ProgressBar(), max_epochs=2)
    lines = capsys.readouterr().err.strip().splitlines()
    history = trainer.history
    for epoch, line in enumerate(lines):
        assert re.match(rf"Epoch {epoch}: 4/4 batches, \d+\.\d s, loss=[\d.]+, val_loss=[\d.]+, ", line), line
        shown = _numbers(line.split(" s, ")[1])
        assert shown["loss"] == float(f"{history['train_loss'][epoch]:.4g}")
        assert shown["accuracy"] == float(f"{history['train_accuracy'][epoch]:.4g}")
        assert shown["val_loss"] == float(f"{history['val_loss'][epoch]:.4g}")


def test_an_epoch_without_a_validation_shows_no_validation_numbers_on_its_line(tmp_path, capsys):
    # check_val_every_n_epoch=2: epoch 2's line showed epoch 1's val_loss and val_accuracy, which a log's
    # reader takes for epoch 2's validation; its history row has none.
    trainer = fit_with(tmp_path, ProgressBar(), max_epochs=4, check_val_every_n_epoch=2)
    lines = capsys.readouterr().err.strip().splitlines()
    history = trainer.history
    for epoch, line in enumerate(lines):
        shown = {name for name in _numbers(line.split(" s, ")[1]) if name.startswith("val_")}
        validated = history["val_loss"][epoch] is not None and epoch % 2 == 1
        assert shown == ({"val_loss", "val_accuracy"} if validated else set()), (epoch, line)


def test_an_epochs_line_shows_a_validation_value_a_callback_wrote_into_callback_metrics(tmp_path, capsys):
    """As the CLAP recipe's retrieval callback does, outside self.log: its val_* number is on the line."""
    from audiotrain.train.callback import Callback

    class WritesRetrieval(Callback):
        def on_validation_end(self, trainer, pl_module):
            trainer.callback_metrics["val_retrieval"] = 0.25 + trainer.current_epoch

    trainer = fit_with(tmp_path, ProgressBar(), callbacks=[WritesRetrieval()], max_epochs=2)
    lines = capsys.readouterr().err.strip().splitlines()
    assert [_numbers(line.split(" s, ")[1])["val_retrieval"] for line in lines] == [0.25, 1.25]
    assert trainer.progress_bar_metrics["val_retrieval"] == 1.25


def test_a_terminals_bar_ends_each_epoch_on_its_means_loss_and_val_loss_first(tmp_path, monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    trainer = fit_with(tmp_path, ProgressBar(), max_epochs=1)
    last = terminal.getvalue().split("\r")[-1]
    assert "Epoch 0: 100%" in last and re.search(r"\bloss=[\d.]+, val_loss=[\d.]+, accuracy=", last), last
    shown = _numbers(last.split("it/s, ")[-1])
    assert shown["loss"] == float(f"{trainer.history['train_loss'][0]:.4g}")


class ManyMetrics(TinyClassifier):
    """A dozen metrics with a recipe's long names: with their validation twins, 300 columns in one line."""

    def compute_loss(self, batch):
        loss, metrics = super().compute_loss(batch)
        return loss, metrics | {
            f"chord_head_{i}_accuracy": metrics["accuracy"] * (i + 1) / 16 for i in range(12)
        }


def test_a_long_line_in_a_log_goes_on_in_indented_lines_in_the_same_order(tmp_path, capsys):
    """A recipe's epoch line ran to 350 columns in a log (the chord recipe's, 2 processes, in a file)."""
    fit_with(tmp_path, ProgressBar(), max_epochs=1)
    assert len(capsys.readouterr().err.strip().splitlines()) == 1  # a short line stays one line
    trainer = fit_with(tmp_path, ProgressBar(), ManyMetrics(), max_epochs=1)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) > 1 and all(len(line) <= PLAIN_LINE_WIDTH for line in lines), lines
    assert lines[0].startswith("Epoch 0: 4/4 batches") and all(line.startswith("  ") for line in lines[1:])
    (joined,) = log_lines("\n".join(lines))
    shown = _numbers(joined.split(" s, ")[1])
    history = trainer.history
    assert list(shown)[:3] == ["loss", "val_loss", "accuracy"]
    assert list(shown)[3:15] == [f"chord_head_{i}_accuracy" for i in range(12)]
    for i in (0, 11):
        name = f"chord_head_{i}_accuracy"
        assert shown[name] == float(f"{history['train_' + name][0]:.4g}")
        assert shown["val_" + name] == float(f"{history['val_' + name][0]:.4g}")


def test_the_bars_are_tqdm_auto_only_where_ipywidgets_is_installed(monkeypatch):
    """In a Jupyter kernel without ipywidgets (a plain `pip install jupyterlab`), tqdm.auto printed "IProgress
    not found. Please update jupyter and ipywidgets" for bars that are plain text there anyway; Lightning
    uses tqdm.auto only where ipywidgets is installed, and so do audiotrain's bars now."""
    import importlib
    import importlib.util

    import audiotrain._tqdm as chosen

    import tqdm.auto
    import tqdm.std

    real = importlib.util.find_spec
    try:
        monkeypatch.setattr(
            importlib.util, "find_spec", lambda name, *a: None if name == "ipywidgets" else real(name, *a)
        )
        assert importlib.reload(chosen).tqdm is tqdm.std.tqdm
        monkeypatch.setattr(
            importlib.util, "find_spec", lambda name, *a: object() if name == "ipywidgets" else real(name, *a)
        )
        assert importlib.reload(chosen).tqdm is tqdm.auto.tqdm
    finally:
        monkeypatch.undo()
        importlib.reload(chosen)


@pytest.mark.parametrize("term, columns", [("xterm", 0), ("dumb", 80)], ids=["0 columns", "TERM=dumb"])
def test_a_terminal_that_cannot_show_a_bar_gets_a_logs_lines(term, columns, tmp_path, monkeypatch):
    """`script` started by cron or CI gives a terminal of 0 columns: tqdm drew nothing there, so a whole
    training showed no epoch and no loss, only blank lines."""
    stream, written = a_terminal(columns)
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.setenv("TERM", term)
    fit_with(tmp_path, ProgressBar(), max_epochs=2)
    out = written()
    assert "\r" not in out, out
    assert re.search(r"^Epoch 1: 4/4 batches, \d+\.\d s, loss=", out, re.MULTILINE), out


@pytest.mark.parametrize("command", [["audiotrain.recipes.chords", "train"], ["audiotrain.recipes.clap"]])
def test_the_recipes_help_says_how_a_terminal_gets_lines_not_a_bar(command):
    """A screen reader user in a terminal found only "--progress_bar BOOL show a progress bar": false left out
    the epochs' lines too, and TERM=dumb, which gives them, was in the Trainer's notes alone."""
    import subprocess

    shown = subprocess.run(
        [sys.executable, "-m", *command, "--help"], capture_output=True, text=True, check=True
    )
    assert "TERM=dumb: lines, not redraws, in a terminal too" in " ".join(shown.stdout.split())


class VersionedBar(TQDMProgressBar):
    """Lightning's documented way to change the bar's items: override get_metrics."""

    def get_metrics(self, trainer, pl_module):
        items = super().get_metrics(trainer, pl_module)
        items.pop("accuracy", None)
        items["v_num"] = 0
        return items


def test_a_get_metrics_override_decides_the_items_of_the_bar_and_of_a_logs_line(
    tmp_path, monkeypatch, capsys
):
    # Lightning 2.6.6: a TQDMProgressBar subclass whose get_metrics pops an item and adds another shows, on
    # each step's postfix and on the epoch's final one, exactly the items it returns (its bar without the
    # popped v_num: "train_loss=..., val_loss=..."). Here it was never called: the bar showed every metric.
    fit_with(tmp_path, VersionedBar(), max_epochs=1)
    line = capsys.readouterr().err.strip()
    assert "v_num=0" in line and not re.search(r"\baccuracy=", line) and "val_loss=" in line, line
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    fit_with(tmp_path, VersionedBar(), max_epochs=1)
    postfixes = [redraw for redraw in terminal.getvalue().split("\r") if "loss=" in redraw]
    assert postfixes and all("v_num=0" in p and not re.search(r"\baccuracy=", p) for p in postfixes), (
        postfixes
    )


class LogsToTheBarInValidation(TinyClassifier):
    def validation_step(self, batch, batch_idx):
        self.log("b", mx.array(1.0), prog_bar=True, on_step=False, on_epoch=True)
        return self.compute_loss(batch)


def test_the_sanity_checks_prog_bar_values_are_in_the_bars_metrics_at_its_end_then_dropped(tmp_path):
    # Lightning 2.6.6 (its rich bar's test_rich_progress_bar_correct_value_epoch_end pins it too): at the
    # sanity check's on_validation_end, get_metrics and trainer.progress_bar_metrics hold `b`, which
    # validation_step logs with prog_bar=True; the first training step's no longer do. Here the check's
    # `b` was missing (only the returned val_loss / val_accuracy were there).
    seen = {}

    class Reads(Callback):
        def on_validation_end(self, trainer, module):
            if trainer.sanity_checking:
                seen["sanity"] = (set(bar.get_metrics(trainer, module)), set(trainer.progress_bar_metrics))

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            seen.setdefault("first step", set(trainer.progress_bar_metrics))

    bar = TQDMProgressBar()
    fit_with(tmp_path, bar, LogsToTheBarInValidation(), callbacks=[Reads()], max_epochs=1)
    assert "b" in seen["sanity"][0] and "b" in seen["sanity"][1], seen
    assert "b" not in seen["first step"], seen


class ForgetsItsReturn(TQDMProgressBar):
    def get_metrics(self, trainer, pl_module):
        items = super().get_metrics(trainer, pl_module)
        items.pop("accuracy", None)


def test_a_get_metrics_override_without_its_return_is_named(tmp_path):
    # An override that left out `return items` ended the epoch's fit in the bar's code with a bare
    # "TypeError: 'NoneType' object is not iterable" (audiotrain/train/progress.py, _shown).
    with pytest.raises(
        TypeError, match=r"ForgetsItsReturn.get_metrics returned NoneType \(is a `return` miss"
    ):
        fit_with(tmp_path, ForgetsItsReturn(), max_epochs=1)


def test_a_terminals_validation_bars_have_lightnings_labels(tmp_path, monkeypatch):
    # Lightning 2.6.6's TQDMProgressBar in a fit: "Sanity Checking DataLoader 0: 100%| 2/2" before the first
    # epoch, "Validation DataLoader 0: 100%| 2/2" after it. Here both said "Validating", so the sanity
    # check's bar read as a validation of the untrained model.
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    fit_with(tmp_path, ProgressBar(), max_epochs=1, num_sanity_val_steps=2)
    bars = [frame.split(":")[0] for frame in terminal.getvalue().split("\r") if "DataLoader" in frame]
    first_epoch = terminal.getvalue().index("Epoch 0")
    sanity = terminal.getvalue().index("Sanity Checking DataLoader 0: ")
    assert sanity < first_epoch and bars and "Validating" not in terminal.getvalue()
    assert set(bars) == {"Sanity Checking DataLoader 0", "Validation DataLoader 0"}, bars


class ValidatesEachSet(TinyClassifier):
    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        return super().validation_step(batch, batch_idx)


def test_several_validation_loaders_get_a_bar_each_as_in_lightning(tmp_path, monkeypatch):
    # Lightning 2.6.6 (/tmp/s79/multival/lt_bar.py: loaders of 3 and 2 batches): "Sanity Checking DataLoader
    # 0" 2/2, "... DataLoader 1" 2/2, "Validation DataLoader 0" 3/3, "Validation DataLoader 1" 2/2.
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    trainer = Trainer(
        compile=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
        callbacks=[ProgressBar()],
        enable_model_summary=False,
        max_epochs=1,
    )
    sets = [DataLoader(list(zip(*make_data(n, seed=n))), batch_size=16) for n in (48, 32)]
    trainer.fit(ValidatesEachSet(), make_batches(64), sets)
    bars = []  # (each bar's label and total, in the order they first show)
    for frame in re.split(r"[\r\n]", terminal.getvalue()):
        m = re.match(r"(\w[\w ]*DataLoader \d+): *\d+%\|[^|]*\| \d+/(\d+)", frame.strip())
        if m and m.groups() not in bars:
            bars.append(m.groups())
    assert bars == [
        ("Sanity Checking DataLoader 0", "2"),
        ("Sanity Checking DataLoader 1", "2"),
        ("Validation DataLoader 0", "3"),
        ("Validation DataLoader 1", "2"),
    ]


class PercentBar(ProgressBar):
    """Lightning's docs' own progress bar: its own drawing, from Lightning's ProgressBar API."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        assert self.trainer is trainer
        self.seen.append((batch_idx, self.total_train_batches, self.total_val_batches, self.is_enabled))


def test_a_progress_bar_of_ones_own_reads_lightnings_progress_bar_api(tmp_path, capsys):
    # Lightning 2.6.6, a ProgressBar subclass over 4 batches of 16 (validation 2 batches): self.trainer is the
    # Trainer and self.total_train_batches 4 at each on_train_batch_end (total_val_batches 2), and
    # disable() is Lightning's switch; here those were AttributeErrors ('PB' object has no attribute
    # 'total_train_batches').
    bar = PercentBar()
    bar.disable()  # (nothing drawn, as Lightning's TQDMProgressBar.disable)
    fit_with(tmp_path, bar, max_epochs=1)
    assert bar.seen == [(i, 4, 2, False) for i in range(4)]
    assert capsys.readouterr().err == ""
    bar.enable()
    fit_with(tmp_path / "again", bar, max_epochs=1)
    assert bar.seen[-1] == (3, 4, 2, True) and "Epoch 0: 4/4 batches" in capsys.readouterr().err


def test_a_bars_validation_total_is_0_in_the_epochs_that_do_not_validate(tmp_path):
    """`total_val_batches` gave 2 at every epoch's end under check_val_every_n_epoch=2, so a bar of one's own
    sized a validation part for epochs that run none. Lightning 2.6.6 (limit_val_batches=2, 5 epochs, read in
    on_train_epoch_end): [0, 2, 0, 2, 0]."""
    totals = []

    class ReadsTotal(ProgressBar):
        def on_train_epoch_end(self, trainer, pl_module):
            totals.append(self.total_val_batches)

    bar = ReadsTotal()
    bar.disable()
    fit_with(
        tmp_path, bar, max_epochs=5, check_val_every_n_epoch=2, limit_val_batches=2, num_sanity_val_steps=0
    )
    assert totals == [0, 2, 0, 2, 0]


def test_a_terminal_gets_lightnings_bars_for_validate_test_and_predict_left_on_screen(tmp_path, monkeypatch):
    """Lightning 2.6.6 (limit_val_batches=3, limit_test_batches=4, limit_predict_batches=5): `validate`,
    `test` and `predict` each draw a bar, "Validation DataLoader 0" 3/3, "Testing DataLoader 0" 4/4 and
    "Predicting DataLoader 0" 5/5, left on screen (leave=True; fit's validation bar goes). Here `test` and
    `predict` drew none (a long test set showed nothing for minutes) and `validate`'s was cleared."""
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    trainer = fit_with(tmp_path, ProgressBar(), max_epochs=1)
    module = TinyClassifier()
    shown = []
    for run, n in ((trainer.validate, 48), (trainer.test, 64), (trainer.predict, 80)):
        start = len(terminal.getvalue())
        run(module, make_batches(n))
        shown.append(terminal.getvalue()[start:].split("\r")[-1])
    labels = ("Validation", "Testing", "Predicting")
    for frame, label, batches in zip(shown, labels, (3, 4, 5), strict=True):
        # (the last frame, then a new line: the bar stays; a cleared one ends in spaces and "\r")
        assert re.match(rf"{label} DataLoader 0: 100%\|[^|]*\| {batches}/{batches} .*\]\n$", frame), frame


def test_a_bar_pickles_and_deep_copies_after_a_fit(tmp_path):
    """Lightning 2.6.6: a TQDMProgressBar pickles after fit, validate, test and predict, and
    `copy.deepcopy` takes it (as a loop over folds copies its callbacks). Here both raised after a fit
    (TypeError: cannot pickle 'weakref.ReferenceType' object: the bar held its Trainer)."""
    bar = TQDMProgressBar(refresh_rate=3)
    trainer = fit_with(tmp_path, bar, max_epochs=1)
    trainer.test(TinyClassifier(), make_batches(32))
    for copied in (pickle.loads(pickle.dumps(bar)), copy.deepcopy(bar)):
        assert type(copied) is TQDMProgressBar and copied.refresh_rate == 3
        fit_with(tmp_path / "again", copied, max_epochs=1)  # (and it draws for a Trainer of its own)
        assert copied.trainer is not trainer


@pytest.mark.parametrize(("refresh_rate", "env", "expected"), [(1, "2", 2), (3, "1", 3), (2, "0", 2)])
def test_the_environments_tqdm_miniters_raises_the_refresh_rate_as_in_lightning(
    refresh_rate, env, expected, monkeypatch
):
    """Lightning 2.6.6: TQDMProgressBar(refresh_rate=1) under TQDM_MINITERS=2 has refresh_rate 2, and
    refresh_rate=3 under TQDM_MINITERS=1 keeps 3 (max of the two). Here the variable was not read."""
    monkeypatch.setenv("TQDM_MINITERS", env)
    assert TQDMProgressBar(refresh_rate=refresh_rate).refresh_rate == expected
    assert ProgressBar(refresh_rate=refresh_rate).refresh_rate == expected  # (the Trainer's own bar)


def test_a_tqdm_miniters_that_is_no_int_is_named(monkeypatch):
    monkeypatch.setenv("TQDM_MINITERS", "often")
    with pytest.raises(ValueError, match=r"TQDM_MINITERS='often' is no int"):
        ProgressBar()


def test_lightnings_tqdm_factories_make_the_bars_and_an_override_hides_one(tmp_path, monkeypatch):
    """Lightning's docs hide the validation bar with ``def init_validation_tqdm(self): return
    tqdm(disable=True)`` in a TQDMProgressBar subclass, and Lightning 2.6.6's tests read
    `train_progress_bar` / `val_progress_bar` / `test_progress_bar` (fast_dev_run: each 1/1). Here the
    override was never called (the validation bars still drew) and the properties did not exist."""
    from tqdm import tqdm

    class NoValidationBar(TQDMProgressBar):
        def init_validation_tqdm(self):
            return tqdm(disable=True)

        def init_sanity_tqdm(self):
            return tqdm(disable=True)

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    bar = NoValidationBar()
    trainer = fit_with(tmp_path, bar, max_epochs=1, fast_dev_run=True)
    assert "Epoch 0" in terminal.getvalue() and "DataLoader" not in terminal.getvalue()
    assert (bar.train_progress_bar.n, bar.train_progress_bar.total) == (1, 1)
    assert bar.val_progress_bar.disable
    trainer.test(TinyClassifier(), make_batches(32))
    assert (bar.test_progress_bar.n, bar.test_progress_bar.total) == (1, 1)
    assert "Testing DataLoader 0" in terminal.getvalue()
    with pytest.raises(TypeError, match="predict bar has not been made yet"):
        _ = bar.predict_progress_bar


def test_on_a_rank_other_than_0_the_bar_is_kept_disabled_as_in_lightning(tmp_path, monkeypatch):
    """Lightning 2.6.6 keeps the progress bar on every rank and disables it where is_global_zero is False
    (`pbar.enable(); trainer.fit(model); assert pbar.is_disabled`), so `trainer.progress_bar_callback` is
    the bar there too. Here rank 1 dropped it: progress_bar_callback was None, and code such as
    ``trainer.progress_bar_callback.print(...)`` failed on rank 1 alone."""
    from audiotrain.distributed import collectives

    monkeypatch.setattr(collectives, "is_main_process", lambda: False)  # (as rank 1 of a job sees itself)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    bar = TQDMProgressBar()
    trainer = fit_with(tmp_path, bar, max_epochs=1)
    assert trainer.progress_bar_callback is bar and bar.is_disabled
    assert terminal.getvalue() == ""  # (rank 0 alone draws)


def test_the_bars_print_takes_a_file_as_lightnings(capsys):
    """Lightning 2.6.6's ``pbar.print("x", file=sys.stdout)`` writes "x" to stdout (its Tqdm.write takes
    `file`); here it raised TypeError (tqdm.write() got multiple values for keyword argument 'file')."""
    bar = ProgressBar()
    bar.print("to", "stdout", file=sys.stdout)
    bar.print("to stderr", end="!\n")
    assert capsys.readouterr() == ("to stdout\n", "to stderr!\n")


class CountsEachLoader(ProgressBar):
    """A bar of one's own reading Lightning's per-loader totals as each loader starts."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        super().on_validation_batch_start(trainer, pl_module, batch, batch_idx, dataloader_idx)
        if batch_idx == 0:
            self.seen.append(("val", dataloader_idx, self.total_val_batches_current_dataloader))

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        super().on_test_batch_start(trainer, pl_module, batch, batch_idx, dataloader_idx)
        if batch_idx == 0:
            self.seen.append(("test", dataloader_idx, self.total_test_batches_current_dataloader))


def test_a_bar_of_ones_own_reads_each_loaders_total_as_lightnings_api_gives_it(tmp_path):
    """Lightning's ProgressBar has `total_val_batches_current_dataloader` (and test's, predict's): the batches
    of the loader running now, 3 then 2 for loaders of 48 and 32 samples (num_sanity_val_steps=0). Here
    they were AttributeErrors."""
    bar = CountsEachLoader()
    bar.disable()
    trainer = Trainer(
        compile=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
        callbacks=[bar],
        enable_model_summary=False,
        max_epochs=1,
        num_sanity_val_steps=0,
    )
    sets = [DataLoader(list(zip(*make_data(n, seed=n))), batch_size=16) for n in (48, 32)]
    trainer.fit(ValidatesEachSet(), make_batches(64), sets)
    trainer.test(TestsEachSet(), sets)
    assert bar.seen == [("val", 0, 3), ("val", 1, 2), ("test", 0, 3), ("test", 1, 2)]


class TestsEachSet(TinyClassifier):
    def test_step(self, batch, batch_idx, dataloader_idx=0):
        return super().test_step(batch, batch_idx)
