"""What a PyTorch user moving to MLX's optimizers meets through configure_optimizers: optimizers whose
learning rate works otherwise than torch's (Adafactor's relative step), and resuming with another
optimizer than the checkpoint's."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import audiotrain  # noqa: F401  (loads the BLAS before mlx)
from audiotrain import OptimizerConfig, TrainModule
from audiotrain.train.callbacks import LearningRateMonitor
from audiotrain.train.loggers import CSVLogger
from audiotrain.train.schedulers import StepLRScheduler

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from tasks import TinyClassifier, make_batches, quiet_trainer


def _with(make_optimizer):
    class Module(TinyClassifier):
        def configure_optimizers(self):
            return make_optimizer()

    return Module()


def test_adafactor_with_its_relative_step_trains_and_logs_no_single_rate(tmp_path):
    # MLX's Adafactor() sets each parameter's rate itself and holds no learning_rate: the first log of the
    # learning rate raised a bare KeyError after the epoch had trained.
    monitor = LearningRateMonitor()
    logger = CSVLogger(tmp_path / "logs")
    trainer = quiet_trainer(tmp_path, max_epochs=1, log_every_n_steps=2, callbacks=[monitor], logger=logger)
    trainer.fit(_with(optim.Adafactor), make_batches())
    assert trainer.global_step == 6
    assert math.isnan(trainer.learning_rate())
    assert "lr-Adafactor" not in trainer.callback_metrics


def test_adafactor_without_relative_step_needs_a_rate(tmp_path):
    with pytest.raises(ValueError, match=r"Adafactor\(relative_step=False\) has no learning_rate"):
        quiet_trainer(tmp_path, max_epochs=1).fit(
            _with(lambda: optim.Adafactor(relative_step=False)), make_batches()
        )


def test_adafactor_says_a_rate_given_with_relative_step_is_unused(tmp_path):
    module = _with(lambda: optim.Adafactor(learning_rate=1e-3))
    with pytest.warns(UserWarning, match=r"relative_step=True \(MLX's default\) does not use that rate"):
        quiet_trainer(tmp_path, max_epochs=1).fit(module, make_batches())


def test_adafactor_with_a_rate_and_no_relative_step_trains_quietly_at_that_rate(tmp_path):
    trainer = quiet_trainer(tmp_path, max_epochs=1)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*Adafactor.*")
        trainer.fit(_with(lambda: optim.Adafactor(learning_rate=1e-3, relative_step=False)), make_batches())
    assert trainer.learning_rate() == pytest.approx(1e-3)


def _saved_with(tmp_path, make_optimizer) -> str:
    trainer = quiet_trainer(tmp_path, max_epochs=1, enable_checkpointing=True)
    trainer.fit(_with(make_optimizer), make_batches())
    return trainer.checkpoint_callback.last_model_path


@pytest.mark.parametrize(
    ("now", "said"),
    [
        (lambda: optim.AdamW(learning_rate=1e-2), "Adam is now AdamW"),
        (
            lambda: optim.Adam(learning_rate=1e-2, betas=[0.5, 0.5]),
            "Adam's betas [0.9, 0.999] is now [0.5, 0.5]",
        ),
        (
            lambda: optim.Adam(learning_rate=1e-2, bias_correction=True),
            "Adam's bias_correction False is now True",
        ),
    ],
)
def test_resuming_with_another_optimizer_class_or_setting_says_what_changed(tmp_path, now, said):
    # The state loaded (Adam's moments fit AdamW's, RMSprop's fit Adagrad's) and the new settings updated
    # it without a word; torch's load_state_dict would have restored the saved settings.
    last = _saved_with(tmp_path, lambda: optim.Adam(learning_rate=1e-2))
    trainer = quiet_trainer(tmp_path, max_epochs=2)
    with pytest.warns(UserWarning, match="configure_optimizers gives another optimizer") as caught:
        trainer.fit(_with(now), make_batches(), ckpt_path=last)
    assert any(said in str(w.message) for w in caught)
    assert trainer.current_epoch == 2


def test_resuming_with_the_same_optimizer_says_nothing_of_it(tmp_path):
    make = lambda: optim.SGD(learning_rate=0.1, momentum=0.9, nesterov=True)  # noqa: E731
    last = _saved_with(tmp_path, make)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*another optimizer.*")
        quiet_trainer(tmp_path, max_epochs=2).fit(_with(make), make_batches(), ckpt_path=last)


@pytest.mark.parametrize("label", [3, optim.cosine_decay(1e-3, 100)])
def test_an_lr_schedule_name_that_is_not_a_label_is_refused(label):
    # It was taken silently and written into every checkpoint's config (a schedule passed here, as
    # Lightning's lr_scheduler, scheduled nothing).
    with pytest.raises(TypeError, match=r"OptimizerConfig.lr_schedule_name must be a string .* or None, got"):
        OptimizerConfig(optim.AdamW(learning_rate=1e-3), lr_schedule_name=label)


def test_adafactors_param_groups_read_in_a_hook_hold_nan_for_its_rate(tmp_path):
    # Lightning's self.optimizers().param_groups[0]["lr"] raised a bare KeyError: 'learning_rate'.
    seen = []

    class Reads(TinyClassifier):
        def configure_optimizers(self):
            return optim.Adafactor()

        def on_train_epoch_start(self):
            seen.append(self.optimizers().param_groups[0]["lr"])

    quiet_trainer(tmp_path, max_epochs=1).fit(Reads(), make_batches())
    assert len(seen) == 1 and math.isnan(seen[0])


def test_swa_with_adafactors_relative_step_is_refused_by_name(tmp_path):
    # It trained up to the SWA epoch and then raised a bare KeyError: 'learning_rate'.
    from audiotrain.train.callbacks import StochasticWeightAveraging

    trainer = quiet_trainer(tmp_path, max_epochs=3, callbacks=[StochasticWeightAveraging(swa_lrs=0.01)])
    with pytest.raises(
        ValueError, match="StochasticWeightAveraging: the optimizer has no learning rate to anneal"
    ):
        trainer.fit(_with(optim.Adafactor), make_batches())


def _encoder_and_head():
    return optim.MultiOptimizer(
        [optim.Adam(learning_rate=1e-4), optim.AdamW(learning_rate=1e-3)],
        [lambda path, _: path.startswith("fc1.")],
    )


def test_trainer_optimizers_past_the_one_says_where_a_multioptimizers_optimizers_are(tmp_path):
    # A port of Lightning's two optimizers read trainer.optimizers[1] and got Python's bare
    # "IndexError: list index out of range".
    trainer = quiet_trainer(tmp_path, max_epochs=1)
    with pytest.raises(IndexError, match=r"trainer.optimizers\[0\]: no optimizer yet"):
        trainer.optimizers[0]
    trainer.fit(_with(_encoder_and_head), make_batches())
    with pytest.raises(IndexError, match=r"trainer.optimizers\[0\].optimizers\[i\]"):
        trainer.optimizers[1]
    assert len(trainer.optimizers) == 1 and [g["lr"] for g in trainer.optimizers[0].param_groups] == [
        pytest.approx(1e-4),
        pytest.approx(1e-3),
    ]
    assert isinstance(trainer.optimizers[0].optimizers[1], optim.AdamW)


def test_lightning_1s_optimizer_frequency_is_taken_alone_and_refused_by_name_for_alternating_updates(
    tmp_path,
):
    # ({"optimizer": g, "frequency": 1}, {"optimizer": d, "frequency": 5}) was told only "returned 2
    # optimizers", and a lone {"optimizer": opt, "frequency": 2} (Lightning 1 steps it at every batch,
    # Lightning 2 ignores the key) "returned a dict with keys ['frequency', 'optimizer']".
    def alternating():
        return (
            {"optimizer": optim.Adam(learning_rate=1e-3), "frequency": 1},
            {"optimizer": optim.AdamW(learning_rate=1e-3), "frequency": 5},
        )

    with pytest.raises(TypeError, match=r"2 optimizers with Lightning 1's 'frequency' .*MultiOptimizer"):
        quiet_trainer(tmp_path, max_epochs=1).fit(_with(alternating), make_batches())
    with pytest.raises(TypeError, match=r"'frequency': 0: expected an int >= 1"):
        quiet_trainer(tmp_path, max_epochs=1).fit(
            _with(lambda: {"optimizer": optim.SGD(learning_rate=0.1), "frequency": 0}), make_batches()
        )
    trainer = quiet_trainer(tmp_path, max_epochs=1)
    trainer.fit(_with(lambda: {"optimizer": optim.SGD(learning_rate=0.1), "frequency": 2}), make_batches())
    assert trainer.global_step == 6 and int(trainer.optimizer.step) == 6


def test_a_multioptimizers_param_groups_lr_set_in_a_hook_sets_that_groups_rate(tmp_path):
    # Lightning's `for pg in opt.param_groups: pg["lr"] *= 0.1` in a hook was refused ("the groups here only
    # report the rate"); each group's optimizer's learning_rate is what it sets now.
    refusals = []

    class Decays(TinyClassifier):
        def configure_optimizers(self):
            return _encoder_and_head()

        def on_train_epoch_start(self):
            if self.current_epoch == 1:
                groups = self.trainer.optimizers[0].param_groups
                for group in groups:
                    group["lr"] *= 0.1
                for bad in ("0.1", -1.0):
                    with pytest.raises(TypeError, match=r"\['lr'\] = .*: expected a number >= 0") as caught:
                        groups[1]["lr"] = bad
                    refusals.append(caught)

    trainer = quiet_trainer(tmp_path, max_epochs=2)
    trainer.fit(Decays(), make_batches())
    assert [float(part.learning_rate) for part in trainer.optimizer.optimizers] == pytest.approx([1e-5, 1e-4])
    assert len(refusals) == 2


def test_param_groups_lr_takes_a_rate_that_an_mlx_schedule_or_numpy_gives(tmp_path):
    # `pg["lr"] = schedule(step)` (an MLX schedule gives an mx.array) or a numpy float32 was refused as
    # "expected a number >= 0", where torch's groups take a tensor; a bool array is still refused.
    refusals = []

    class Sets(TinyClassifier):
        def configure_optimizers(self):
            return _encoder_and_head()

        def on_train_epoch_start(self):
            groups = self.optimizers().param_groups
            groups[0]["lr"] = optim.cosine_decay(0.1, 10)(mx.array(0))
            groups[1]["lr"] = np.float32(0.25)
            with pytest.raises(TypeError, match=r"expected a number >= 0") as caught:
                groups[1]["lr"] = mx.array(True)
            refusals.append(caught)

    trainer = quiet_trainer(tmp_path, max_epochs=1)
    trainer.fit(Sets(), make_batches())
    assert [float(part.learning_rate) for part in trainer.optimizer.optimizers] == pytest.approx([0.1, 0.25])
    assert len(refusals) == 1


def test_param_groups_lr_set_where_the_rate_is_a_schedule_is_refused(tmp_path):
    class Sets(TinyClassifier):
        def configure_optimizers(self):
            return optim.SGD(learning_rate=optim.cosine_decay(0.1, 100))

        def on_train_epoch_start(self):
            self.optimizers().param_groups[0]["lr"] = 0.5

    with pytest.raises(TypeError, match=r"is a schedule, which the next update evaluates"):
        quiet_trainer(tmp_path, max_epochs=1).fit(Sets(), make_batches())


@pytest.mark.parametrize(
    "interval, schedule, at_batch_starts, at_epoch_ends",
    [
        # Lightning 2.6.6 (torch StepLR(step_size=3, gamma=0.5), "interval": "step"; 6 batches, 3 epochs).
        (
            "step",
            lambda: StepLRScheduler(0.1, step_size=3, gamma=0.5),
            [0.1] * 3 + [0.05] * 3 + [0.025] * 3 + [0.0125] * 3 + [0.00625] * 3 + [0.003125] * 3,
            [0.025, 0.00625, 0.0015625],
        ),
        # Lightning 2.6.6 (torch StepLR(step_size=2, gamma=0.5), "interval": "epoch"): stepped after the
        # epoch's last batch, before on_train_epoch_end.
        (
            "epoch",
            lambda: StepLRScheduler(0.1, step_size=2, gamma=0.5),
            [0.1] * 12 + [0.05] * 6,
            [0.1, 0.05, 0.05],
        ),
    ],
)
def test_param_groups_lr_read_in_a_hook_is_the_rate_of_the_coming_update(
    tmp_path, interval, schedule, at_batch_starts, at_epoch_ends
):
    # Read in on_train_batch_start, the rate was the last update's, one update behind Lightning's
    # (0.1 at the 4th batch where Lightning's StepLR gives 0.05), and after fit the last update's too.
    seen = {"batch": [], "epoch_end": []}

    class Reads(TinyClassifier):
        def configure_optimizers(self):
            return {
                "optimizer": optim.SGD(learning_rate=0.1),
                "lr_scheduler": {"scheduler": schedule(), "interval": interval},
            }

        def on_train_batch_start(self, batch, batch_idx):
            seen["batch"].append(self.optimizers().param_groups[0]["lr"])

        def on_train_epoch_end(self):
            seen["epoch_end"].append(self.optimizers().param_groups[0]["lr"])

    module = Reads()
    quiet_trainer(tmp_path, max_epochs=3, limit_val_batches=0).fit(module, make_batches())
    assert seen["batch"] == pytest.approx(at_batch_starts, rel=1e-7)
    assert seen["epoch_end"] == pytest.approx(at_epoch_ends, rel=1e-7)
    assert module.optimizers().param_groups[0]["lr"] == pytest.approx(at_epoch_ends[-1], rel=1e-7)


def _warm_up_job():
    """4 batches of 4 and a Linear(3, 2)'s initial weights, as /tmp/s78/ldiffmanual/common.py drew them
    for the Lightning 2.6.6 comparison."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 3)).astype(np.float32)
    y = rng.standard_normal((16, 2)).astype(np.float32)
    w = (rng.standard_normal((2, 3)) * 0.5).astype(np.float32)
    b = (rng.standard_normal((2,)) * 0.1).astype(np.float32)
    batches = [(mx.array(x[i : i + 4]), mx.array(y[i : i + 4])) for i in range(0, 16, 4)]
    return batches, w, b


class _WarmsUp(TrainModule):
    """Lightning's warm-up by hand: every group's "lr" set to 0.1 * min(1, (global_step + 1) / 2), in
    `where` ("training_step" as Lightning's manual-optimization habit, or "on_train_batch_start")."""

    def __init__(self, where, via="module"):
        super().__init__()
        _, w, b = _warm_up_job()
        self.net, self.where, self.via, self._rates = nn.Linear(3, 2), where, via, []
        self.net.update({"weight": mx.array(w), "bias": mx.array(b)})

    def _warm_up(self):
        # (self.trainer.optimizers[0]: Lightning's other way to the groups)
        optimizer = self.optimizers() if self.via == "module" else self.trainer.optimizers[0]
        for group in optimizer.param_groups:
            group["lr"] = 0.1 * min(1.0, (self.trainer.global_step + 1) / 2)

    def on_train_batch_start(self, batch, batch_idx):
        if self.where == "on_train_batch_start":
            self._warm_up()

    def on_after_optimizer_step(self):
        if self.where == "on_after_optimizer_step":
            self._warm_up()

    def training_step(self, batch, batch_idx):
        if self.where == "training_step":
            self._warm_up()
        x, y = batch
        return mx.mean((self.net(x) - y) ** 2)

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self._rates.append(self.optimizers().param_groups[0]["lr"])

    def configure_optimizers(self):
        return optim.SGD(learning_rate=0.1)


@pytest.mark.parametrize(
    "where, compile_",
    [("on_train_batch_start", True), ("on_train_batch_start", False), ("training_step", False)],
)
def test_a_warm_up_set_by_hand_gives_lightnings_rates_and_weights(tmp_path, where, compile_):
    # Lightning 2.6.6, the rate set in training_step (manual or automatic optimization alike): the rates
    # read after each of the 4 steps, and the weights after them (weight row by row, then bias).
    lightning_rates = [0.05, 0.1, 0.1, 0.1]
    lightning_weights = [0.12204288, -0.37290597, -0.0515933, -0.40191254, -0.39113051, 0.3413218]
    lightning_bias = [0.1858424, 0.05608549]
    module = _WarmsUp(where)
    quiet_trainer(tmp_path, max_epochs=1, compile=compile_).fit(module, _warm_up_job()[0])
    assert module._rates == pytest.approx(lightning_rates, rel=1e-6)
    np.testing.assert_allclose(np.array(module.net.weight).ravel(), lightning_weights, rtol=1e-5)
    np.testing.assert_allclose(np.array(module.net.bias), lightning_bias, rtol=1e-5)


@pytest.mark.parametrize("via", ["module", "trainer"])
def test_a_rate_set_inside_a_compiled_step_is_refused(tmp_path, via):
    # In the compiled step the rate set in training_step was the trace's at every step: rates 0.05, 0.05,
    # 0.05, 0.05 after the 4 steps, where Lightning 2.6.6 (and compile=False) give 0.05, 0.1, 0.1, 0.1.
    with pytest.raises(TypeError, match=r"\['lr'\] = 0.05 inside a compiled step: .*on_train_batch_start"):
        quiet_trainer(tmp_path, max_epochs=1).fit(_WarmsUp("training_step", via), _warm_up_job()[0])


@pytest.mark.parametrize("via", ["module", "trainer"])
def test_a_rate_set_in_on_after_optimizer_step_of_a_compiled_step_is_refused(tmp_path, via):
    # on_after_optimizer_step runs inside the compiled step: a rate set there was the trace's at every step
    # (0.05 after each of the 4 steps, where compile=False gives 0.1 from the second on), without a refusal.
    with pytest.raises(TypeError, match=r"\['lr'\] = 0.05 inside a compiled step: .*on_train_batch_start"):
        quiet_trainer(tmp_path, max_epochs=1).fit(_WarmsUp("on_after_optimizer_step", via), _warm_up_job()[0])


def test_param_groups_lr_read_in_a_hook_is_the_rate_given_as_lightnings(tmp_path):
    # In a hook, self.optimizers().param_groups[0]["lr"] read 0.10000000149011612 (MLX's float32 widened)
    # where Lightning 2.6.6 gives 0.1, and where a fine-tuning callback's finetune_function reads the same
    # optimizer's group as 0.1 (2a89cb27): a printed or self.log'ged rate differed between the two.
    seen = []

    class Reads(TinyClassifier):
        def configure_optimizers(self):
            return optim.SGD(learning_rate=0.1)

        def on_train_epoch_end(self):
            seen.append(repr(self.optimizers().param_groups[0]["lr"]))

    quiet_trainer(tmp_path, max_epochs=1, limit_val_batches=0).fit(Reads(), make_batches())
    assert seen == ["0.1"]


def test_the_rate_a_monitor_logs_and_learning_rate_returns_are_the_rate_given_as_lightnings(tmp_path):
    # LearningRateMonitor's lr-SGD rows and trainer.learning_rate() (the history's learning_rate) read
    # 0.10000000149011612, MLX's float32 widened, where Lightning 2.6.6's monitor logs 0.1 for SGD(lr=0.1):
    # the CSV column and a TensorBoard tag showed a rate the user never gave.
    logger = CSVLogger(tmp_path / "logs")
    trainer = quiet_trainer(
        tmp_path, max_epochs=1, log_every_n_steps=2, callbacks=[LearningRateMonitor()], logger=logger
    )
    trainer.fit(_with(lambda: optim.SGD(learning_rate=0.1)), make_batches())
    rows = (Path(logger.log_dir) / "metrics.csv").read_text().splitlines()
    column = rows[0].split(",").index("lr-SGD")
    assert {row.split(",")[column] for row in rows[1:] if row.split(",")[column]} == {"0.1"}
    assert repr(trainer.learning_rate()) == "0.1" and trainer.history["learning_rate"] == [0.1]
