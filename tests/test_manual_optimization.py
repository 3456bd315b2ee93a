"""Lightning's manual optimization (`automatic_optimization = False`): a GAN's alternating updates in the
Trainer, with MLX's `manual_backward(loss_fn)`; the same numbers as a loop written by hand, each optimizer on
its own parameters, optimizer steps as global steps, exact resume, clipping, the non-finite guard, logging,
data parallel, and clear errors for what a manual step cannot be given."""

import dataclasses
import gc
import glob
import re
import warnings
import weakref
from collections import namedtuple
from pathlib import Path

import audiotrain  # noqa: F401  (before mlx: the fast BLAS)
from audiotrain import Trainer, TrainModule
from audiotrain.train.callbacks import ModelCheckpoint
from audiotrain.train.loggers import CSVLogger

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from distributed import describe, run_ranks
from mlx.utils import tree_flatten


def _data(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return [mx.array(rng.normal(size=(8, 4)).astype("float32")) for _ in range(n)]


def _bce(logits, target):
    return nn.losses.binary_cross_entropy(logits, mx.full(logits.shape, target), reduction="mean")


def _d_loss(gen, disc, x):
    fake = mx.stop_gradient(gen(x))
    return _bce(disc(x), 1.0) + _bce(disc(fake), 0.0)


def _g_loss(gen, disc, x):
    return _bce(disc(gen(x)), 1.0)


class GAN(TrainModule):
    """Lightning's GAN example in MLX's words: the discriminator's update, then the generator's."""

    def __init__(self, toggle=True, step_generator=True):
        super().__init__()
        self.automatic_optimization = False
        self.toggle, self.step_generator = toggle, step_generator
        mx.random.seed(3)
        self.generator = nn.Linear(4, 4)
        self.discriminator = nn.Linear(4, 1)

    def configure_optimizers(self):
        return [
            {"optimizer": optim.Adam(learning_rate=1e-2), "params": self.generator},
            {"optimizer": optim.SGD(learning_rate=1e-1, momentum=0.9), "params": self.discriminator},
        ]

    def training_step(self, batch, batch_idx):
        opt_g, opt_d = self.optimizers()
        if self.toggle:
            self.toggle_optimizer(opt_d)
        else:  # (torch's habit: the gradients the generator's loss gave the discriminator cleared first)
            opt_d.zero_grad()
        d_loss = self.manual_backward(lambda: _d_loss(self.generator, self.discriminator, batch))
        opt_d.step()
        opt_d.zero_grad()
        if self.toggle:
            self.untoggle_optimizer(opt_d)
        self.log("d_loss", d_loss, prog_bar=True)
        if self.step_generator:
            with self.toggled_optimizer(opt_g) if self.toggle else _nothing():
                g_loss = self.manual_backward(_g_loss, self.generator, self.discriminator, batch)
                opt_g.step()
                opt_g.zero_grad()
            self.log("g_loss", g_loss)


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _trainer(**kwargs):
    kwargs = {
        "max_epochs": 1,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
        **kwargs,
    }
    return Trainer(**kwargs)


def _weights(module):
    return {k: np.array(v.astype(mx.float32)) for k, v in tree_flatten(module.parameters())}


def _by_hand(batches, epochs=1):
    """The same training as a plain MLX loop: what the Trainer must reproduce."""
    model = GAN()
    gen, disc = model.generator, model.discriminator
    opt_g, opt_d = optim.Adam(learning_rate=1e-2), optim.SGD(learning_rate=1e-1, momentum=0.9)
    for _ in range(epochs):
        for x in batches:
            _, grads = nn.value_and_grad(disc, lambda x: _d_loss(gen, disc, x))(x)
            opt_d.update(disc, grads)
            _, grads = nn.value_and_grad(gen, lambda x: _g_loss(gen, disc, x))(x)
            opt_g.update(gen, grads)
            mx.eval(gen.parameters(), disc.parameters(), opt_g.state, opt_d.state)
    return _weights(model)


@pytest.mark.parametrize("toggle", [True, False])
def test_a_gan_trains_as_the_same_loop_written_by_hand(toggle):
    batches = _data()
    model = GAN(toggle=toggle)
    trainer = _trainer(max_epochs=2)
    trainer.fit(model, batches)
    expected = _by_hand(batches, epochs=2)
    for name, value in _weights(model).items():
        np.testing.assert_allclose(value, expected[name], rtol=1e-5, atol=1e-6, err_msg=name)
    # Lightning's global step counts optimizer steps: two a batch here (as Lightning 2.6.6's, measured)
    assert trainer.global_step == 2 * 2 * len(batches)
    assert set(trainer.callback_metrics) >= {"d_loss", "g_loss"}
    # Lightning's list of the optimizers, as self.optimizers() gives them
    assert [type(o.optimizer).__name__ for o in trainer.optimizers] == ["Adam", "SGD"]
    assert trainer.optimizers[1].param_groups[0]["lr"] == pytest.approx(0.1)
    assert [type(o) for o in model.optimizers(use_pl_optimizer=False)] == [optim.Adam, optim.SGD]


def test_each_optimizer_updates_only_its_own_parameters():
    model = GAN(toggle=False, step_generator=False)
    before = _weights(model)
    trainer = _trainer()
    trainer.fit(model, _data())
    after = _weights(model)
    # the gradients reached the generator too (no toggle), but only the discriminator's optimizer stepped
    assert all(np.array_equal(before[k], after[k]) for k in before if k.startswith("generator."))
    assert all(not np.array_equal(before[k], after[k]) for k in before if k.startswith("discriminator."))
    assert trainer.global_step == len(_data())


def test_max_steps_counts_optimizer_steps_as_lightning():
    trainer = _trainer(max_steps=5)
    trainer.fit(GAN(), _data())
    assert trainer.global_step == 6  # Lightning 2.6.6: max_steps=5 with two steps a batch stops at 6


def test_global_step_counts_each_optimizer_step_as_it_is_taken_as_lightning():
    """Lightning 2.6.6 (measured, two optimizers): self.global_step read in training_step is 0, 1, 2 at the
    start, after opt_d.step() and after opt_g.step() of batch 0; a step taken in on_train_batch_end does
    not count. Here it read 0, 0, 0: the batch's steps were counted once training_step had returned."""
    seen = []

    class Reads(GAN):
        def training_step(self, batch, batch_idx):
            opt_g, opt_d = self.optimizers()
            seen.append(self.global_step)
            self.manual_backward(lambda: _d_loss(self.generator, self.discriminator, batch))
            opt_d.step()
            opt_d.zero_grad()
            seen.append(self.global_step)
            self.manual_backward(lambda: _g_loss(self.generator, self.discriminator, batch))
            opt_g.step()
            opt_g.zero_grad()
            seen.append(self.global_step)

        def on_train_batch_end(self, outputs, batch, batch_idx):
            opt_g, _ = self.optimizers()
            opt_g.step()  # (no gradients since zero_grad: nothing changes, and Lightning counts it not)
            seen.append(("end", self.global_step))

    trainer = _trainer()
    trainer.fit(Reads(), _data(2))
    assert seen == [0, 1, 2, ("end", 2), 2, 3, 4, ("end", 4)]
    assert trainer.global_step == 4


def test_optimizers_kept_from_on_train_start_still_step_after_what_trains_changed():
    """A module that keeps `self.optimizers()` from on_train_start (Lightning's optimizers go on working)
    and freezes a part at epoch 1: the Trainer rebuilds its step there, and the kept handle stepped the old
    one, with no gradients: the rest of the fit updated nothing, silently."""

    class KeepsItsOptimizer(TrainModule):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False
            self.a, self.b = nn.Linear(2, 1), nn.Linear(2, 1)
            self.moved = []

        def configure_optimizers(self):
            return optim.SGD(learning_rate=0.1)

        def on_train_start(self):
            self.opt = self.optimizers()

        def on_train_epoch_start(self):
            if self.current_epoch == 1:
                self.b.freeze()

        def training_step(self, batch, batch_idx):
            before = np.array(self.a.weight)
            self.manual_backward(lambda: mx.sum(self.a(batch) + self.b(batch)))
            self.opt.step()
            self.opt.zero_grad()
            self.moved.append(not np.array_equal(before, np.array(self.a.weight)))

    model = KeepsItsOptimizer()
    _trainer(max_epochs=2).fit(model, [mx.ones((1, 2))] * 2)
    assert model.moved == [True] * 4


def test_gradients_add_up_until_zero_grad():
    class Twice(TrainModule):
        def __init__(self, zero_between):
            super().__init__()
            self.automatic_optimization = False
            self.zero_between = zero_between
            self.w = mx.array([1.0, -2.0])

        def configure_optimizers(self):
            return optim.SGD(learning_rate=0.5)

        def training_step(self, batch, batch_idx):
            opt = self.optimizers()
            self.manual_backward(lambda: mx.sum(self.w * batch[0]))
            if self.zero_between:
                opt.zero_grad()
            self.manual_backward(lambda: mx.sum(self.w * batch[0]))
            opt.step()
            opt.zero_grad()

    x = [mx.array([[1.0, 3.0]])]
    summed, single = Twice(False), Twice(True)
    _trainer().fit(summed, x)
    _trainer().fit(single, x)
    np.testing.assert_allclose(np.array(summed.w), [1.0 - 1.0, -2.0 - 3.0])  # two gradients, one update
    np.testing.assert_allclose(np.array(single.w), [1.0 - 0.5, -2.0 - 1.5])


def test_a_single_optimizer_returns_its_loss_to_the_loggers_and_resumes_exactly(tmp_path):
    class Regression(TrainModule):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False
            mx.random.seed(0)
            self.net = nn.Linear(4, 1)

        def configure_optimizers(self):
            return optim.Adam(learning_rate=1e-2)

        def training_step(self, batch, batch_idx):
            opt = self.optimizers()
            loss = self.manual_backward(lambda: mx.mean(self.net(batch) ** 2))
            opt.step()
            opt.zero_grad()
            return loss

    straight = Regression()
    _trainer(max_epochs=3).fit(straight, _data())
    first = Regression()
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    _trainer(max_epochs=2, enable_checkpointing=True, callbacks=[ckpt], default_root_dir=tmp_path).fit(
        first, _data()
    )
    resumed = Regression()
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    trainer = _trainer(max_epochs=3, enable_checkpointing=True, callbacks=[ckpt], default_root_dir=tmp_path)
    trainer.fit(resumed, _data(), ckpt_path=str(tmp_path / "ckpt" / "last"))
    for name, value in _weights(straight).items():
        np.testing.assert_array_equal(_weights(resumed)[name], value, err_msg=name)
    assert "train_loss" in trainer.callback_metrics
    assert trainer.global_step == 3 * len(_data())


def test_a_gan_resumed_from_a_mid_epoch_checkpoint_equals_an_uninterrupted_run(tmp_path):
    batches = _data()
    straight = GAN()
    _trainer(max_epochs=2).fit(straight, batches)
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=4, save_top_k=-1)
    _trainer(max_steps=8, enable_checkpointing=True, callbacks=[ckpt], default_root_dir=tmp_path).fit(
        GAN(), batches
    )
    saved = sorted((tmp_path / "ckpt").glob("*step=8*"))
    assert saved, sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    resumed = GAN()
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=4, save_top_k=-1)
    trainer = _trainer(max_epochs=2, enable_checkpointing=True, callbacks=[ckpt], default_root_dir=tmp_path)
    trainer.fit(resumed, batches, ckpt_path=str(saved[0]))
    assert trainer.global_step == 2 * 2 * len(batches)
    for name, value in _weights(straight).items():
        np.testing.assert_array_equal(_weights(resumed)[name], value, err_msg=name)


def test_clip_gradients_clips_what_that_optimizer_applies():
    class Clipped(TrainModule):
        def __init__(self, algorithm):
            super().__init__()
            self.automatic_optimization = False
            self.algorithm = algorithm
            self.w = mx.array([0.0, 0.0])

        def configure_optimizers(self):
            return optim.SGD(learning_rate=1.0)

        def training_step(self, batch, batch_idx):
            opt = self.optimizers()
            self.manual_backward(lambda: mx.sum(self.w * mx.array([3.0, 4.0])))  # gradient (3, 4), norm 5
            self.clip_gradients(opt, gradient_clip_val=1.0, gradient_clip_algorithm=self.algorithm)
            opt.step()
            opt.zero_grad()

    by_norm, by_value = Clipped("norm"), Clipped("value")
    _trainer().fit(by_norm, [mx.zeros((1, 1))])
    _trainer().fit(by_value, [mx.zeros((1, 1))])
    np.testing.assert_allclose(np.array(by_norm.w), [-0.6, -0.8], rtol=1e-5)
    np.testing.assert_allclose(np.array(by_value.w), [-1.0, -1.0])


class _Spiky(TrainModule):
    """One weight, whose gradient is NaN at the batches `nan_at` takes."""

    def __init__(self, nan_at):
        super().__init__()
        self.automatic_optimization = False
        self.nan_at = nan_at
        self.w = mx.array([1.0])

    def configure_optimizers(self):
        return optim.SGD(learning_rate=0.1)

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        scale = mx.array(float("nan")) if self.nan_at(batch_idx) else mx.array(1.0)
        self.manual_backward(lambda: mx.sum(self.w * scale))
        opt.step()
        opt.zero_grad()


def test_a_non_finite_gradient_skips_that_update_and_is_counted():
    model = _Spiky(nan_at=lambda i: i == 1)
    trainer = _trainer(max_epochs=1)
    with pytest.warns(UserWarning, match="skipped"):
        trainer.fit(model, [mx.zeros((1, 1))] * 3)
    np.testing.assert_allclose(np.array(model.w), [1.0 - 0.2])  # batches 0 and 2 updated, 1 skipped
    assert trainer.callback_metrics["skipped_steps"] == 1


def test_the_loggers_step_counts_batches_as_lightnings_does(tmp_path):
    trainer = _trainer(log_every_n_steps=2, logger=CSVLogger(tmp_path, name="gan"))
    trainer.fit(GAN(), _data())
    (csv,) = glob.glob(str(tmp_path / "gan" / "*" / "metrics.csv"))
    rows = open(csv).read().splitlines()
    steps = [row.split(",")[0] for row in rows[1:]]
    # every 2 batches (Lightning logs a manual module every log_every_n_steps batches), at the batch count
    assert steps == ["2", "4", "6"], rows
    assert rows[0].split(",")[:3] == ["step", "d_loss", "g_loss"]


def test_throughput_of_a_manual_module_is_logged_at_the_loggers_step_the_batch_count():
    """ThroughputMonitor logged a GAN's training throughput at the global step (4, 8, 12: two optimizer
    steps a batch), beside every other series at the batch count (2, 4, 6). Lightning 2.6.6's logs it with
    step=None: its `_batches_that_stepped`, the batch count for a manual module."""
    from audiotrain.train.callbacks import ThroughputMonitor

    from tasks import RecordingLogger

    logger = RecordingLogger()
    monitor = ThroughputMonitor(batch_size_fn=lambda batch: batch.shape[0])
    _trainer(log_every_n_steps=2, logger=logger, callbacks=[monitor]).fit(GAN(), _data())
    assert sorted({s for s, m in logger.metrics if any(k.startswith("train/") for k in m)}) == [2, 4, 6]


def test_an_epoch_end_with_nothing_logged_per_epoch_sends_the_loggers_nothing():
    """The GAN logs per step only: the loggers got a row of the Trainer's epoch alone ({'epoch': 0}) at the
    epoch's end. Lightning 2.6.6's `_LoggerConnector.log_metrics` returns when there are no metrics, before
    it adds its epoch; now the same."""
    from tasks import RecordingLogger

    logger = RecordingLogger()
    _trainer(log_every_n_steps=2, logger=logger).fit(GAN(), _data())
    assert [step for step, _ in logger.metrics] == [2, 4, 6]
    assert not any(m.keys() == {"epoch"} for _, m in logger.metrics)


def test_device_stats_at_batch_start_follow_the_batch_count_as_the_batch_ends(tmp_path):
    """DeviceStatsMonitor's on_train_batch_start asked whether the global step + 1 was a logging step,
    where a GAN's global step moves by 2 a batch: with log_every_n_steps=2 it never logged there (odd
    counts). Lightning's `should_update_logs` counts batches (`_batches_that_stepped + 1`) for both hooks."""
    from audiotrain.train.callbacks import DeviceStatsMonitor

    from tasks import RecordingLogger

    logger = RecordingLogger()
    trainer = _trainer(log_every_n_steps=2, logger=logger, callbacks=[DeviceStatsMonitor()])
    trainer.fit(GAN(), _data())

    def steps(hook):
        return sorted(
            {s for s, m in logger.metrics if any(k.startswith(f"DeviceStatsMonitor.{hook}/") for k in m)}
        )

    assert steps("on_train_batch_end") == [2, 4, 6]
    assert steps("on_train_batch_start") == [2, 4, 6]


@pytest.mark.parametrize(
    "flag, value, words",
    [
        ("gradient_clip_val", 1.0, "self.clip_gradients"),
        ("accumulate_grad_batches", 2, "every N batches"),
        ("precision", "bf16-mixed", "bf16-true"),
    ],
)
def test_trainer_settings_of_the_automatic_step_are_refused_saying_what_to_do(flag, value, words):
    with pytest.raises(ValueError, match=rf"Trainer\({flag}=.*automatic_optimization = False") as err:
        _trainer(**{flag: value}).fit(GAN(), _data(1))
    assert words in str(err.value)


class _Configured(GAN):
    def __init__(self, configured):
        super().__init__()
        self._configured = configured

    def configure_optimizers(self):
        return self._configured(self)


@pytest.mark.parametrize(
    "configured, error, words",
    [
        (lambda m: [optim.Adam(1e-3), optim.SGD(1e-1)], TypeError, "say which parameters each"),
        (
            lambda m: [
                {"optimizer": optim.Adam(1e-3), "params": m},
                {"optimizer": optim.SGD(1e-1), "params": m.discriminator},
            ],
            ValueError,
            "'discriminator.weight' is in the 'params' of optimizers \\[0, 1\\]",
        ),
        (
            lambda m: [
                {"optimizer": optim.Adam(1e-3), "params": nn.Linear(2, 2)},
                {"optimizer": optim.SGD(1e-1), "params": m.discriminator},
            ],
            ValueError,
            "not a submodule of _Configured",
        ),
        (
            lambda m: [
                {"optimizer": optim.Adam(1e-3), "params": "generator.0"},
                {"optimizer": optim.SGD(1e-1), "params": "discriminator"},
            ],
            ValueError,
            "take none of _Configured's parameters",
        ),
        (
            lambda m: [
                {"optimizer": optim.Adam(1e-3), "params": m.generator, "lr_scheduler": object()},
                {"optimizer": optim.SGD(1e-1), "params": m.discriminator},
            ],
            TypeError,
            "give each optimizer its schedule as its learning rate",
        ),
    ],
)
def test_configure_optimizers_mistakes_name_the_item_and_the_fix(configured, error, words):
    with pytest.raises(error, match=words):
        _trainer().fit(_Configured(configured), _data(1))


def test_manual_backward_takes_the_loss_function_and_says_so_when_given_a_loss():
    class Torchlike(GAN):
        def training_step(self, batch, batch_idx):
            loss = _d_loss(self.generator, self.discriminator, batch)
            self.manual_backward(loss)

    with pytest.raises(TypeError, match=r"pass the function that computes the loss"):
        _trainer().fit(Torchlike(), _data(1))


def test_manual_calls_are_refused_with_automatic_optimization():
    class Automatic(TrainModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(4, 1)

        def configure_optimizers(self):
            return optim.SGD(1e-1)

        def training_step(self, batch, batch_idx):
            self.manual_backward(lambda: mx.mean(self.net(batch)))

    with pytest.raises(TypeError, match="automatic_optimization = False"):
        _trainer(compile=False).fit(Automatic(), _data(1))


_DP_JOB = """
import sys
import numpy as np
import audiotrain
from audiotrain import Trainer
from audiotrain.distributed import collectives
sys.path.insert(0, {tests!r})
from test_manual_optimization import GAN, _data, _weights
import mlx.core as mx

rank, size = collectives.rank(), collectives.world_size()
batches = [b.reshape(2, 4, 4)[rank] if size > 1 else b for b in _data()]
model = GAN()
trainer = Trainer(max_epochs=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                  enable_checkpointing=False)
trainer.fit(model, batches)
np.savez({out!r} + f"-rank{{rank}}.npz", step=trainer.global_step, **_weights(model))
"""


@pytest.mark.serial
def test_two_ranks_average_the_gradients_and_equal_one_process_over_the_combined_batch(tmp_path):
    tests = str(Path(__file__).parent)
    job = _DP_JOB.format(tests=tests, out=str(tmp_path / "dp"))
    results = run_ranks(job, 2, timeout=180, cwd=tmp_path)
    assert all(r.returncode == 0 for r in results), describe(results)
    single = GAN()
    _trainer().fit(single, _data())  # (this process: one rank, the whole batches)
    r0, r1 = (np.load(tmp_path / f"dp-rank{r}.npz") for r in (0, 1))
    assert int(r0["step"]) == 12
    for name, value in _weights(single).items():
        np.testing.assert_array_equal(r0[name], r1[name], err_msg=name)  # ranks bitwise identical
        np.testing.assert_allclose(r0[name], value, rtol=1e-4, atol=1e-6, err_msg=name)


def test_lightnings_manual_step_hooks_run_on_the_callbacks_and_the_module():
    calls = []

    class Watch(audiotrain.train.callbacks.Callback):
        def on_before_backward(self, trainer, pl_module, loss):
            calls.append(("callback", "on_before_backward", round(float(loss), 4)))

        def on_after_backward(self, trainer, pl_module):
            calls.append(("callback", "on_after_backward"))

        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            calls.append(("callback", "on_before_optimizer_step", type(optimizer).__name__))

    class Hooked(GAN):
        def on_before_optimizer_step(self, optimizer):
            calls.append(("module", "on_before_optimizer_step", type(optimizer).__name__))

    _trainer(callbacks=[Watch()]).fit(Hooked(step_generator=False), _data(1))
    assert [c[:2] for c in calls] == [
        ("callback", "on_before_backward"),
        ("callback", "on_after_backward"),
        ("callback", "on_before_optimizer_step"),
        ("module", "on_before_optimizer_step"),
    ]
    assert calls[2][2] == calls[3][2] == "SGD"  # the discriminator's optimizer, the MLX one


@pytest.mark.filterwarnings("ignore:Trainer.fit. an epoch has 6 training batches")
def test_learning_rate_monitor_names_each_optimizer_as_lightning_and_steps_by_batches(tmp_path):
    from audiotrain.train.callbacks import LearningRateMonitor

    monitor = LearningRateMonitor()
    trainer = _trainer(max_epochs=2, callbacks=[monitor], logger=CSVLogger(tmp_path, name="g"))
    trainer.fit(GAN(), _data())
    (csv,) = glob.glob(str(tmp_path / "g" / "*" / "metrics.csv"))
    rows = [row.split(",") for row in open(csv).read().splitlines()]
    assert rows[0][:3] == ["step", "lr-Adam", "lr-SGD"]  # Lightning 2.6.6's names for two optimizers
    # at each epoch start, at the batches trained (6 an epoch), not the optimizer steps (12)
    assert [row[0] for row in rows[1:] if row[1]] == ["0", "6"]


def test_the_lr_finder_says_a_manual_step_must_return_its_loss():
    """A manual training_step returning nothing (Lightning's GAN example does not) ended the sweep with a
    bare KeyError: 'loss'. Lightning records NaN for each such batch and fails to suggest a rate; here the
    sweep stops at once, saying what to return."""
    from audiotrain.train.tuner import Tuner

    with pytest.raises(ValueError, match=r"_OneOptimizer.training_step returned no loss.*return the loss"):
        Tuner(_trainer()).lr_find(
            _OneOptimizer(lambda opt: opt), [mx.ones((1, 1))] * 8, num_training=5, update_attr=False
        )


def test_several_optimizers_are_refused_by_the_lr_finder_and_accumulation_by_its_scheduler():
    from audiotrain.train.callbacks import GradientAccumulationScheduler
    from audiotrain.train.tuner import Tuner

    with pytest.raises(ValueError, match="returned 2 optimizers for manual optimization"):
        Tuner(_trainer()).lr_find(GAN(), _data(), num_training=3, update_attr=False)
    with pytest.raises(RuntimeError, match="GradientAccumulationScheduler with GAN.automatic_optimization"):
        _trainer(callbacks=[GradientAccumulationScheduler({1: 2})]).fit(GAN(), _data(1))


@pytest.mark.parametrize("precision", ["32", "bf16-true"])
def test_the_readme_gan_example_trains_both_networks(precision):
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("### Manual optimization: GANs", 1)[1].split("\n### ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    rng = np.random.default_rng(0)
    batches = [
        (
            mx.array(rng.normal(size=(4, 8)).astype("float32")),
            mx.array(rng.normal(size=(4, 16)).astype("float32")),
        )
        for _ in range(3)
    ]
    mx.random.seed(0)
    model = namespace["GAN"](nn.Linear(8, 16), nn.Sequential(nn.Linear(16, 8), nn.GELU(), nn.Linear(8, 1)))
    before = _weights(model)
    if precision == "bf16-true":  # (the weights the fit starts from: rounded to bfloat16)
        before = {k: np.array(mx.array(v).astype(mx.bfloat16).astype(mx.float32)) for k, v in before.items()}
    trainer = _trainer(max_epochs=2, precision=precision)
    trainer.fit(model, batches)
    after = _weights(model)
    assert trainer.global_step == 2 * 2 * 3
    trained = {k for k in before if not np.array_equal(before[k], after[k])}
    # (in bfloat16 a bias's 2e-4 steps may round away: every weight matrix still moves)
    assert trained >= {k for k in before if precision == "32" or before[k].ndim == 2}, trained
    assert all(np.isfinite(v.astype(np.float32)).all() for v in after.values())
    assert {"d_loss", "g_loss"} <= set(trainer.callback_metrics)


class _OneOptimizer(TrainModule):
    """One optimizer stepped twice a batch: its steps are not the batches."""

    def __init__(self, configured=None):
        super().__init__()
        self.automatic_optimization = False
        self.configured = configured
        self.w = mx.array([1.0])
        self.rates = []

    def configure_optimizers(self):
        return self.configured(optim.SGD(learning_rate=1.0))

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        for _ in range(2):
            self.rates.append(opt.param_groups[0]["lr"])
            self.manual_backward(lambda: mx.sum(self.w * batch))
            opt.step()
            opt.zero_grad()


@pytest.mark.parametrize(
    "scheduler",
    [
        optim.step_decay(1.0, 0.5, 1),  # (Lightning's default interval: "epoch")
        {"scheduler": optim.step_decay(1.0, 0.5, 1), "interval": "epoch"},
        {"scheduler": optim.step_decay(1.0, 0.5, 1), "interval": "step", "frequency": 2},
    ],
)
def test_an_lr_scheduler_counted_in_epochs_or_batches_is_refused_for_a_manual_step(scheduler):
    """Its epochs were derived from the optimizer's steps as if each batch stepped once: with two steps a
    batch the "epoch" rate halved in the middle of the first epoch (1, 1, 0.5, 0.5 over its two batches).
    Lightning steps no scheduler of a manual module (the user's `sch.step()` does)."""
    model = _OneOptimizer(lambda opt: {"optimizer": opt, "lr_scheduler": scheduler})
    with pytest.raises(ValueError, match=r"_OneOptimizer.configure_optimizers: .*'interval': 'step'") as err:
        _trainer(limit_train_batches=2).fit(model, [mx.ones((1, 1))] * 2)
    assert "automatic_optimization = False" in str(err.value)


def test_a_per_step_lr_scheduler_follows_that_optimizers_own_steps():
    # (Lightning's sch.step() after each opt.step(): the rate halves at every step, twice a batch)
    per_step = {"scheduler": optim.step_decay(1.0, 0.5, 1), "interval": "step"}
    model = _OneOptimizer(lambda opt: {"optimizer": opt, "lr_scheduler": per_step})
    _trainer(limit_train_batches=2).fit(model, [mx.ones((1, 1))] * 2)
    assert model.rates == pytest.approx([1.0, 0.5, 0.25, 0.125])


def test_the_learning_rate_monitor_names_a_manual_optimizer_by_its_schedulers_name(tmp_path):
    """A manual module's one optimizer was logged as "lr-SGD" whatever its lr_scheduler's "name" said.
    Lightning's LearningRateMonitor names it by that "name" (here "my_rate"), in manual optimization too."""
    from audiotrain.train.callbacks import LearningRateMonitor

    from tasks import RecordingLogger

    per_step = {"scheduler": optim.step_decay(1.0, 0.5, 1), "interval": "step", "name": "my_rate"}
    model = _OneOptimizer(lambda opt: {"optimizer": opt, "lr_scheduler": per_step})
    logger = RecordingLogger()
    trainer = _trainer(
        limit_train_batches=2, log_every_n_steps=1, logger=logger, callbacks=[LearningRateMonitor()]
    )
    trainer.fit(model, [mx.ones((1, 1))] * 2)
    logged = {k for _, m in logger.metrics for k in m}
    assert "my_rate" in logged and "lr-SGD" not in logged


def test_lightnings_optimizer_and_schedulers_lists_with_one_manual_optimizer():
    """Lightning's `return [opt], [sch]` with one optimizer: the usual configuration, as its dict form; it
    was refused as "schedulers with several manual optimizers"."""
    per_step = {"scheduler": optim.step_decay(1.0, 0.5, 1), "interval": "step"}
    model = _OneOptimizer(lambda opt: ([opt], [per_step]))
    _trainer(limit_train_batches=2).fit(model, [mx.ones((1, 1))] * 2)
    assert model.rates == pytest.approx([1.0, 0.5, 0.25, 0.125])


@pytest.mark.parametrize("as_list", [False, True])
def test_one_manual_optimizer_on_some_parameters_updates_only_those(as_list):
    """`{"optimizer": opt, "params": self.discriminator}`, the form this module takes for each of several
    optimizers, given for one (Lightning's optimizer built on some parameters): only those update, and its
    state holds only them. It was refused as torch's parameter groups."""

    class DiscriminatorOnly(GAN):
        def configure_optimizers(self):
            one = {"optimizer": optim.SGD(learning_rate=0.1, momentum=0.9), "params": self.discriminator}
            return [one] if as_list else one

        def training_step(self, batch, batch_idx):
            opt = self.optimizers()
            self.manual_backward(lambda: _d_loss(self.generator, self.discriminator, batch))
            opt.step()
            opt.zero_grad()

    model = DiscriminatorOnly()
    before = _weights(model)
    trainer = _trainer()
    trainer.fit(model, _data(2))
    after = _weights(model)
    assert {k for k in before if not np.array_equal(before[k], after[k])} == {
        "discriminator.weight",
        "discriminator.bias",
    }
    held = {k.split(".", 2)[2] for k, _ in tree_flatten(trainer.optimizer.state) if k.endswith(".v")}
    assert held == {"discriminator.weight.v", "discriminator.bias.v"}


def test_lr_schedulers_in_a_manual_step_says_that_opt_step_steps_the_schedule():
    """Lightning's manual habit `sch = self.lr_schedulers(); sch.step()` with a per-step schedule: refused
    saying that each opt.step() steps it already. It said the schedule was evaluated "inside the compiled
    update" and pointed to an 'epoch' interval, which a manual module is refused."""

    class StepsItsSchedule(_OneOptimizer):
        def training_step(self, batch, batch_idx):
            super().training_step(batch, batch_idx)
            self.lr_schedulers().step()

    per_step = {"scheduler": optim.step_decay(1.0, 0.5, 1), "interval": "step"}
    model = StepsItsSchedule(lambda opt: {"optimizer": opt, "lr_scheduler": per_step})
    with pytest.raises(TypeError, match=r"lr_schedulers\(\): a manual optimizer's schedule") as err:
        _trainer(limit_train_batches=1).fit(model, [mx.ones((1, 1))])
    assert "each opt.step() steps it" in str(err.value) and "compiled" not in str(err.value)


def test_several_optimizers_with_automatic_optimization_point_to_manual_optimization():
    # (Lightning 2.6.6: "Training with multiple optimizers is only supported with manual optimization")
    class Automatic(GAN):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = True

        def configure_optimizers(self):
            return optim.Adam(1e-3), optim.SGD(1e-1)

        def training_step(self, batch, batch_idx):
            return _g_loss(self.generator, self.discriminator, batch)

    with pytest.raises(TypeError, match="returned 2 optimizers") as err:
        _trainer().fit(Automatic(), _data(1))
    assert "self.automatic_optimization = False" in str(err.value)


def test_backbone_finetuning_unfreezes_into_the_one_optimizer_the_step_steps():
    """BackboneFinetuning adds the backbone as a parameter group of the first optimizer (Lightning's
    trainer.optimizers[0].add_param_group): self.optimizers() stays that one optimizer, whose step now
    updates the backbone too (before, it became a list of two and `opt.step()` raised)."""
    from audiotrain.train.callbacks import BackboneFinetuning

    class Tuned(TrainModule):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False
            mx.random.seed(0)
            self.backbone = nn.Linear(4, 4)
            self.head = nn.Linear(4, 1)
            self.seen = []

        def configure_optimizers(self):
            return optim.SGD(learning_rate=0.1)

        def training_step(self, batch, batch_idx):
            opt = self.optimizers()
            loss = self.manual_backward(lambda: mx.mean(self.head(self.backbone(batch)) ** 2))
            opt.step()
            opt.zero_grad()
            return loss

        def on_train_epoch_end(self):
            self.seen.append(_weights(self))

    model = Tuned()
    before = _weights(model)
    _trainer(max_epochs=3, callbacks=[BackboneFinetuning(unfreeze_backbone_at_epoch=1)]).fit(model, _data())
    after_0, after_1, after_2 = model.seen
    for name in before:
        frozen_in_epoch_0 = name.startswith("backbone.")
        assert np.array_equal(before[name], after_0[name]) == frozen_in_epoch_0, name
        assert not np.array_equal(after_0[name], after_1[name]), name
        assert not np.array_equal(after_1[name], after_2[name]), name


def test_a_manual_step_may_return_a_dict_without_a_loss():
    """Lightning 2.6.6's manual loop takes any dict from training_step (ManualResult: `extra`, "loss"
    optional) and passes it to on_train_batch_end; a dict without 'loss' was refused here."""

    class Extra(GAN):
        def training_step(self, batch, batch_idx):
            super().training_step(batch, batch_idx)
            return {"extra": mx.array(2.0)}

        def on_train_batch_end(self, outputs, batch, batch_idx):
            self.outputs = outputs

    model = Extra()
    trainer = _trainer()
    trainer.fit(model, _data(2))
    assert float(model.outputs["extra"]) == 2.0 and "loss" not in model.outputs
    assert trainer.global_step == 4


def test_a_manual_steps_dict_passes_what_is_not_a_metric_to_the_batch_end_hooks_as_it_is():
    """Lightning 2.6.6's ManualResult test: `{"loss": loss, "something": "jiraffe"}` reaches
    on_train_batch_end's outputs; here the string (or an array of predictions for a callback) was refused as
    a metric. The loss and scalar metrics are still reported as before."""
    seen = []

    class Watch(audiotrain.train.callbacks.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            seen.append(outputs)

    class Extras(GAN):
        def training_step(self, batch, batch_idx):
            super().training_step(batch, batch_idx)
            fake = self.generator(batch)
            return {"loss": mx.mean(fake), "something": "jiraffe", "fake": fake, "acc": mx.array(0.5)}

    trainer = _trainer(callbacks=[Watch()])
    trainer.fit(Extras(), _data(2))
    assert [o["something"] for o in seen] == ["jiraffe", "jiraffe"]
    assert seen[0]["fake"].shape == (8, 4)
    assert float(seen[0]["acc"]) == 0.5 and "loss" in seen[0]
    assert {"train_loss", "train_acc"} <= set(trainer.callback_metrics)


def test_without_the_guard_non_finite_updates_still_stop_the_run_after_max_consecutive_nonfinite():
    """Trainer(nonfinite_guard=False) applies such updates, and max_consecutive_nonfinite still stops the
    run, as the automatic step's streak counts them; a manual step's were not counted (it trained on)."""
    from audiotrain.train.nonfinite import NonFiniteStop

    trainer = _trainer(nonfinite_guard=False, max_consecutive_nonfinite=2)
    with pytest.raises(NonFiniteStop):
        trainer.fit(_Spiky(nan_at=lambda i: True), [mx.zeros((1, 1))] * 6)
    assert trainer.global_step < 6


def test_reading_the_epoch_in_a_manual_step_is_not_warned_as_a_compiled_steps_read():
    """A manual step runs eagerly, so `self.current_epoch` is read afresh (a generator warm-up by epoch,
    as in Lightning); it was warned about as if the step were compiled ("stays that of the trace")."""
    import warnings

    class WarmUp(GAN):
        def __init__(self):
            super().__init__(toggle=False)
            self.step_generator = False

        def training_step(self, batch, batch_idx):
            self.step_generator = self.current_epoch >= 1
            super().training_step(batch, batch_idx)

    trainer = _trainer(max_epochs=2)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        trainer.fit(WarmUp(), _data(3))
    assert not [w for w in seen if "compiled step" in str(w.message)], [str(w.message) for w in seen]
    assert trainer.global_step == 3 + 2 * 3  # the generator stepped from epoch 1 on


def test_an_error_between_two_optimizer_steps_counts_the_first_as_lightning(tmp_path):
    """training_step raising after opt_d.step() and before opt_g.step(): Lightning 2.6.6 (measured) has
    counted opt_d's step, so OnExceptionCheckpoint saves global_step 5 after two whole batches, and a resume
    reruns batch 2 and ends at 13 for 6 batches. Here the batch's steps were dropped (4, then 12)."""
    from audiotrain.train.callbacks import OnExceptionCheckpoint

    class Boom(GAN):
        def __init__(self, boom):
            super().__init__(toggle=False)
            self.boom = boom

        def training_step(self, batch, batch_idx):
            opt_g, opt_d = self.optimizers()
            opt_d.zero_grad()
            self.manual_backward(lambda: _d_loss(self.generator, self.discriminator, batch))
            opt_d.step()
            if self.boom and batch_idx == 2:
                raise RuntimeError("boom")
            self.manual_backward(_g_loss, self.generator, self.discriminator, batch)
            opt_g.step()
            opt_g.zero_grad()

    trainer = _trainer(callbacks=[OnExceptionCheckpoint(dirpath=tmp_path)], default_root_dir=tmp_path)
    with pytest.raises(RuntimeError, match="boom"):
        trainer.fit(Boom(True), _data())
    assert trainer.global_step == 5
    resumed = _trainer()
    resumed.fit(Boom(False), _data(), ckpt_path=str(tmp_path / "on_exception"))
    assert resumed.global_step == 13


def test_a_seed_style_on_batch_end_gets_none_for_a_manual_step_that_returned_no_loss():
    """Seed 003's `on_batch_end(trainer, state, loss)` (`create_trainer`'s callbacks) was a KeyError: 'loss'
    after a manual step that returned nothing."""
    from audiotrain.training_hooks import wrap_training_hooks

    losses = []

    class SeedStyle:
        def on_batch_end(self, trainer, state, loss):
            losses.append(loss)

    (adapter,) = wrap_training_hooks([SeedStyle()], owner=None)
    _trainer(callbacks=[adapter]).fit(GAN(), _data(2))
    assert losses == [None, None]


class ReturnsParts(GAN):
    """A HiFi-GAN generator loss as MLX code writes it (value_and_grad's `(loss, aux)`): the total and its
    parts, the parts wanted for logging outside the loss function."""

    def training_step(self, batch, batch_idx):
        opt_g, _ = self.optimizers()

        def g_loss():
            adv, l1 = _g_loss(self.generator, self.discriminator, batch), mx.mean(mx.abs(batch))
            return adv + 45 * l1, {"adv": adv, "l1": l1}

        self.returned = self.manual_backward(g_loss)
        opt_g.step()
        opt_g.zero_grad()


def test_manual_backward_gives_back_what_the_loss_function_returned_beside_its_loss():
    """A loss function returning `(loss, parts)` had its parts dropped: manual_backward returned the loss
    alone, so the parts could not be logged (Lightning's manual_backward returns None; its loss and parts are
    computed in training_step). Now it returns what the function returned, as value_and_grad's value."""
    model = ReturnsParts()
    _trainer(max_steps=1).fit(model, _data(n=1))
    loss, parts = model.returned
    assert set(parts) == {"adv", "l1"}
    assert float(loss) == pytest.approx(float(parts["adv"]) + 45 * float(parts["l1"]), rel=1e-5)


class KeepsAShortcut(GAN):
    """A private second name for a submodule, as ports keep one (`self._disc = self.discriminator`)."""

    def __init__(self):
        super().__init__()
        self._disc = self.discriminator


def test_a_submodule_kept_under_a_private_second_name_is_still_its_optimizers():
    """`"params": self.discriminator` was looked up by its first name in named_modules, here `_disc`, whose
    parameters MLX leaves out (a leading underscore): "its 'params' take none of KeepsAShortcut's
    parameters", naming a fix (torch's names) that was not the cause. Now either name counts."""
    model, plain = KeepsAShortcut(), GAN()
    _trainer(max_steps=2).fit(model, _data(n=1))
    _trainer(max_steps=2).fit(plain, _data(n=1))
    expected = _weights(plain)
    for name, value in _weights(model).items():
        np.testing.assert_allclose(value, expected[name], rtol=1e-6, err_msg=name)


class CompiledGenerator(GAN):
    """The generator's forward wrapped in a plain mx.compile, as MLX's inference examples write it."""

    def __init__(self):
        super().__init__()
        self._gen = mx.compile(lambda x: self.generator(x))

    def training_step(self, batch, batch_idx):
        opt_g, _ = self.optimizers()
        with self.toggled_optimizer(opt_g):
            self.manual_backward(lambda: _bce(self.discriminator(self._gen(batch)), 1.0))
            opt_g.step()
            opt_g.zero_grad()


def test_a_loss_through_a_plainly_compiled_network_warns_that_it_reaches_no_weight():
    """The compiled forward keeps the generator's weights as constants: every manual_backward gave them a
    zero gradient and the generator never learned, without a word (the automatic eager step warns of it).
    Lightning has no counterpart (torch.compile keeps the module's parameters live)."""
    model = CompiledGenerator()
    before = _weights(model)
    with pytest.warns(
        UserWarning, match=r"CompiledGenerator.training_step: manual_backward's loss reached no "
    ):
        _trainer(max_steps=3).fit(model, _data(n=3))
    assert all(np.array_equal(before[k], v) for k, v in _weights(model).items() if k.startswith("generator"))


class KeepsACompiledLayer(GAN):
    """torch's habit, `self.generator = torch.compile(Generator())`, written with mx.compile."""

    def __init__(self):
        super().__init__()
        self.generator = mx.compile(nn.Linear(4, 4))


def test_a_layer_kept_as_mx_compile_of_it_is_refused_naming_it_and_the_fix():
    """It failed inside the first step with "argument of type '_gc_func' is not iterable" (MLX's compiled
    function poses as the layer and is walked as one; its weights are constants, never trained). torch's
    compiled module is a module with live parameters; MLX's is not: refused at once, saying what to keep."""
    with pytest.raises(
        TypeError, match=r"Trainer.fit: KeepsACompiledLayer.generator is mx.compile\(Linear"
    ) as e:
        _trainer(max_steps=1).fit(KeepsACompiledLayer(), _data(n=1))
    assert "partial(mx.compile, inputs=self.generator.state)" in str(e.value)


class BuildsACompiledLayer(GAN):
    def configure_model(self):
        self.generator = mx.compile(nn.Linear(4, 4))


def test_a_layer_built_as_mx_compile_in_configure_model_is_refused_too():
    """(The layers configure_model builds are checked after it, where fit's start saw none yet.)"""
    with pytest.raises(
        TypeError, match=r"configure_model: BuildsACompiledLayer.generator is mx.compile\(Lin"
    ):
        _trainer(max_steps=1).fit(BuildsACompiledLayer(), _data(n=1))


# ---- grad_norm: Lightning's per-parameter gradient norms, read from a manual step -----------------------
def _np_norm(x, p):
    x = np.abs(np.asarray(x, dtype=np.float64)).ravel()
    return x.max() if p == np.inf else (x**p).sum() ** (1 / p)


def test_grad_norm_gives_lightnings_norms_of_each_networks_gradients_against_numpy():
    """Lightning 2.6.6's `grad_norm(module, p)`: `grad_{float(p)}_norm/<name>` for each parameter with a
    gradient, names relative to the module given (`grad_norm(m.gen, 2)` gives `grad_2.0_norm/0.weight`), and
    `grad_{p}_norm_total`, the p-norm of those norms (the gradients as one vector)."""
    from audiotrain import grad_norm

    seen = []

    class Measured(GAN):
        def on_before_optimizer_step(self, optimizer):
            net = self.discriminator if isinstance(optimizer, optim.SGD) else self.generator
            seen.append((grad_norm(net, 2), grad_norm(net, "inf"), grad_norm(net, 3, group_separator=".")))
            seen.append(grad_norm(self, 2))  # (only what has a gradient now: the toggled network's)
            self.log_dict(grad_norm(net, norm_type=2))

    x = _data(1)[0]
    trainer = _trainer()
    trainer.fit(Measured(), [x])
    # the same gradients by hand: the discriminator's at the start, the generator's after its update
    model = GAN()
    gen, disc = model.generator, model.discriminator
    _, d_grads = nn.value_and_grad(disc, lambda x: _d_loss(gen, disc, x))(x)
    optim.SGD(learning_rate=1e-1, momentum=0.9).update(disc, d_grads)
    _, g_grads = nn.value_and_grad(gen, lambda x: _g_loss(gen, disc, x))(x)
    (d2, dinf, d3), d_all, (g2, ginf, g3), g_all = seen
    for grads, (two, inf, three), whole, prefix in [
        (d_grads, (d2, dinf, d3), d_all, "discriminator"),
        (g_grads, (g2, ginf, g3), g_all, "generator"),
    ]:
        grads = {k: np.array(v) for k, v in tree_flatten(grads)}
        assert set(two) == {"grad_2.0_norm/weight", "grad_2.0_norm/bias", "grad_2.0_norm_total"}
        assert set(inf) == {"grad_inf_norm/weight", "grad_inf_norm/bias", "grad_inf_norm_total"}
        assert set(three) == {"grad_3.0_norm.weight", "grad_3.0_norm.bias", "grad_3.0_norm_total"}
        assert set(whole) == {f"grad_2.0_norm/{prefix}.{k}" for k in grads} | {"grad_2.0_norm_total"}
        every = np.concatenate([g.ravel() for g in grads.values()])
        for p, norms, sep in [(2, two, "/"), (np.inf, inf, "/"), (3, three, ".")]:
            tag = f"grad_{float(p)}_norm"
            for k, g in grads.items():
                np.testing.assert_allclose(float(norms[f"{tag}{sep}{k}"]), _np_norm(g, p), rtol=1e-5)
            np.testing.assert_allclose(float(norms[f"{tag}_total"]), _np_norm(every, p), rtol=1e-5)
        np.testing.assert_allclose(float(whole["grad_2.0_norm_total"]), float(two["grad_2.0_norm_total"]))
    # logged from the hook as any value: the last optimizer step's (the generator's)
    np.testing.assert_allclose(
        float(trainer.callback_metrics["grad_2.0_norm/weight"]), float(g2["grad_2.0_norm/weight"])
    )


def test_grad_norm_is_empty_after_zero_grad_and_in_training_step_reads_the_summed_gradients():
    """Lightning's returns {} where no parameter has a gradient (after `zero_grad()`, torch's set to None),
    and reads `.grad` as it is: summed over two backward passes, twice one."""
    from audiotrain.train import grad_norm

    seen = []

    class Twice(GAN):
        def training_step(self, batch, batch_idx):
            opt_g, opt_d = self.optimizers()
            seen.append(grad_norm(self.discriminator, 1))
            with self.toggled_optimizer(opt_d):
                self.manual_backward(lambda: _d_loss(self.generator, self.discriminator, batch))
                seen.append(grad_norm(self.discriminator, 1))
                self.manual_backward(lambda: _d_loss(self.generator, self.discriminator, batch))
                seen.append(grad_norm(self.discriminator, 1))
                opt_d.zero_grad()
                seen.append(grad_norm(self.discriminator, 1))

    _trainer().fit(Twice(), _data(1))
    before, once, twice, zeroed = seen
    assert before == {} and zeroed == {}
    for key, value in once.items():
        np.testing.assert_allclose(float(twice[key]), 2 * float(value), rtol=1e-6)


def test_grad_norm_is_refused_outside_a_manual_step_naming_track_grad_norm():
    from audiotrain import grad_norm

    with pytest.raises(RuntimeError, match=r"grad_norm\(Linear.*no manual step is running.*track_grad_norm"):
        grad_norm(nn.Linear(2, 2), 2)

    class Automatic(TrainModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            grad_norm(self.net, 2)
            return mx.mean(self.net(batch) ** 2)

        def configure_optimizers(self):
            return optim.SGD(learning_rate=0.1)

    with pytest.raises(RuntimeError, match="only inside the compiled step"):
        _trainer().fit(Automatic(), _data(1))


def test_grad_norm_refuses_a_bad_norm_type_and_a_module_not_trained():
    """Lightning's: "`norm_type` must be a positive number or 'inf' (infinity norm). Got 0.0"; its 'fro'
    fails in float() ("could not convert string to float"), here with the same message."""
    from audiotrain import grad_norm

    errors = []

    class Asks(GAN):
        def on_before_optimizer_step(self, optimizer):
            for args in [(self.generator, 0), (self.generator, "fro"), (nn.Linear(2, 2), 2), ("gen", 2)]:
                try:
                    grad_norm(*args)
                except (TypeError, ValueError) as error:
                    errors.append(str(error))

    _trainer().fit(Asks(step_generator=False), _data(1))
    assert "`norm_type` must be a positive number or 'inf' (infinity norm). Got 0.0" in errors[0]
    assert "norm_type='fro'" in errors[1] and "positive number or 'inf'" in errors[1]
    assert "not Asks or one of its submodules" in errors[2]
    assert "expected an mlx.nn.Module" in errors[3]


def test_grad_norm_in_on_before_optimizer_step_reads_the_clipped_gradients():
    """Lightning's manual step clips `.grad` in place (`self.clip_gradients` before `opt.step()`), so
    `grad_norm` in `on_before_optimizer_step` gives the clipped norm: here the total is the clip value."""
    from audiotrain import grad_norm

    totals = []

    class Clipped(GAN):
        def training_step(self, batch, batch_idx):
            opt_g, opt_d = self.optimizers()
            with self.toggled_optimizer(opt_d):
                self.manual_backward(lambda: _d_loss(self.generator, self.discriminator, batch))
                self.clip_gradients(opt_d, gradient_clip_val=1e-3, gradient_clip_algorithm="norm")
                opt_d.step()
                opt_d.zero_grad()

        def on_before_optimizer_step(self, optimizer):
            totals.append(float(grad_norm(self.discriminator, 2)["grad_2.0_norm_total"]))

    _trainer().fit(Clipped(), _data(2))
    np.testing.assert_allclose(totals, [1e-3, 1e-3], rtol=1e-4)


# ---- Trainer(compile=True): manual_backward and opt.step() compiled, the same numbers as eagerly ---------
def _fit(model, batches, compile, **kwargs):
    trainer = _trainer(compile=compile, **kwargs)
    trainer.fit(model, batches)
    return trainer


class Logs(GAN):
    """The GAN, its discriminator's loss function logging a part of its loss with self.log, clipping."""

    def training_step(self, batch, batch_idx):
        opt_g, opt_d = self.optimizers()

        def d_loss():
            real = _bce(self.discriminator(batch), 1.0)
            self.log("d_real", real)
            return real + _bce(self.discriminator(mx.stop_gradient(self.generator(batch))), 0.0)

        with self.toggled_optimizer(opt_d):
            self.log("d_loss", self.manual_backward(d_loss))
            self.clip_gradients(opt_d, gradient_clip_val=0.05)
            opt_d.step()
            opt_d.zero_grad()
        with self.toggled_optimizer(opt_g):
            self.log("g_loss", self.manual_backward(_g_loss, self.generator, self.discriminator, batch))
            opt_g.step()
            opt_g.zero_grad()


@pytest.mark.parametrize("module", [lambda: GAN(toggle=True), lambda: GAN(toggle=False), Logs])
def test_a_compiled_manual_step_equals_the_eager_one_bitwise(module):
    """Trainer(compile=True) compiles each manual_backward (per loss function) and each opt.step(): two
    optimizers, toggled or not, clipping, values logged inside the loss function, over two epochs, give
    the eager step's weights and logged values to the last bit (on the CPU)."""
    batches = _data()
    compiled, eager = module(), module()
    a, b = _fit(compiled, batches, True, max_epochs=2), _fit(eager, batches, False, max_epochs=2)
    for name, value in _weights(compiled).items():
        np.testing.assert_array_equal(value, _weights(eager)[name], err_msg=name)
    assert a.callback_metrics.keys() == b.callback_metrics.keys()
    for name, value in a.callback_metrics.items():
        assert float(value) == float(b.callback_metrics[name]), name


class ClosesOverTheBatch(TrainModule):
    """One optimizer; the loss function closes over the batch (a new array every batch) and counts how often
    its Python code runs."""

    def __init__(self, body=None):
        super().__init__()
        self.automatic_optimization = False
        mx.random.seed(0)
        self.net = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 1))
        self._calls, self.losses, self.outputs = 0, [], []  # (private: a count)
        self.body = body

    def configure_optimizers(self):
        return optim.SGD(learning_rate=0.1)

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()

        def loss_fn():
            self._calls += 1
            out = self.net(batch)
            if self.body is not None:
                self.body(out)
            return mx.mean((out - 1) ** 2), out

        loss, out = self.manual_backward(loss_fn)
        self.losses.append(np.array(loss))
        self.outputs.append(np.array(out))
        opt.step()
        opt.zero_grad()


def test_a_loss_closing_over_the_batch_is_traced_once_and_reads_each_new_batch():
    """The batch a loss function closes over is an input of the compiled function, not a constant of its
    graph: every batch's loss is the eager one's (the second batch too), though the function's Python code
    ran once, at the trace. Eagerly (before: every manual step) it runs at every batch."""
    batches = _data(n=4)
    compiled, eager = ClosesOverTheBatch(), ClosesOverTheBatch()
    _fit(compiled, batches, True)
    _fit(eager, batches, False)
    assert compiled._calls == 1 and eager._calls == 4
    np.testing.assert_array_equal(np.array(compiled.losses), np.array(eager.losses))
    assert len({float(loss) for loss in compiled.losses}) == 4


def test_dropout_masks_differ_between_compiled_steps_as_eagerly():
    """MLX's random state is the compiled function's state: each step draws a new dropout mask (a graph
    traced without it would replay the first), the eager fit's masks."""
    batches = [_data(n=1)[0]] * 3  # (one batch thrice: only the mask changes the output)
    compiled, eager = ClosesOverTheBatch(), ClosesOverTheBatch()
    mx.random.seed(7)
    _fit(compiled, batches, True)
    mx.random.seed(7)
    _fit(eager, batches, False)
    np.testing.assert_array_equal(np.array(compiled.outputs), np.array(eager.outputs))
    assert not np.array_equal(compiled.outputs[1], compiled.outputs[2])


class WithBatchNorm(ClosesOverTheBatch):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm(8), nn.Linear(8, 1))


def test_batchnorm_statistics_update_at_every_compiled_step():
    """BatchNorm's running statistics are module state the compiled function writes (its outputs): they move
    at every batch, as eagerly, not only at the trace."""
    batches = _data(n=3)
    compiled, eager = WithBatchNorm(), WithBatchNorm()
    _fit(compiled, batches, True, max_steps=1)
    after_one = np.array(compiled.net.layers[1].running_mean)
    compiled = WithBatchNorm()
    _fit(compiled, batches, True)
    _fit(eager, batches, False)
    assert not np.array_equal(after_one, np.array(compiled.net.layers[1].running_mean))
    for name, value in _weights(compiled).items():
        np.testing.assert_array_equal(value, _weights(eager)[name], err_msg=name)


def test_a_loss_reading_an_arrays_value_runs_eagerly_with_one_warning():
    """A loss function that reads a value on the host (.item(), float(), numpy, a branch on an array) cannot
    be traced: its failed trace leaves the weights, gradients and logs as they were, it runs eagerly for the
    rest of the fit, said once with the function's name, and the fit equals the eager one."""
    seen = []
    batches = _data(n=3)
    compiled = ClosesOverTheBatch(body=lambda out: seen.append(out.sum().item()))
    with pytest.warns(UserWarning, match=r"manual_backward\(.*loss_fn .*\) runs eagerly") as record:
        _fit(compiled, batches, True)
    assert len([w for w in record if "runs eagerly" in str(w.message)]) == 1
    assert "Trainer(compile=False)" in str(record[0].message)
    eager = ClosesOverTheBatch(body=lambda out: None)
    _fit(eager, batches, False)
    for name, value in _weights(compiled).items():
        np.testing.assert_array_equal(value, _weights(eager)[name], err_msg=name)
    np.testing.assert_array_equal(np.array(compiled.losses), np.array(eager.losses))
    assert len(seen) == 3 and compiled._calls == 4  # (the failed trace, then each batch eagerly)


class ClosesOverTheIndex(ClosesOverTheBatch):
    """A loss function closing over the batch index, a Python number new at every batch."""

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        loss = self.manual_backward(lambda: mx.mean((self.net(batch) - 1) ** 2) * (1 + batch_idx % 2))
        self.losses.append(np.array(loss))
        opt.step()
        opt.zero_grad()


def test_a_loss_closing_over_a_changing_python_number_runs_eagerly_after_a_few_traces():
    """Each new batch index is a new trace (MLX keys a graph on a Python number): after a few the function
    runs eagerly, said once, and every batch's loss is still the eager one's."""
    from audiotrain.train.manual_compile import MAX_TRACES_PER_CODE

    batches = _data(n=MAX_TRACES_PER_CODE + 3)
    compiled, eager = ClosesOverTheIndex(), ClosesOverTheIndex()
    with pytest.warns(
        UserWarning, match=r"runs eagerly for the rest of the fit, not compiled: it was traced"
    ) as record:
        _fit(compiled, batches, True)
    # (what to do where the number changes rarely: a warm-up switch computed outside the loss function)
    assert "self.global_step < start" in str(record[0].message)
    _fit(eager, batches, False)
    np.testing.assert_array_equal(np.array(compiled.losses), np.array(eager.losses))


class ClosesOverTheEpoch(ClosesOverTheBatch):
    """A per-epoch loss weight (a GAN's `0.9 ** self.current_epoch` feature-loss schedule), closed over as a
    local and read from the module inside the loss function: each changes once an epoch."""

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        epoch = self.current_epoch

        def loss_fn():
            self._calls += 1
            return mx.mean((self.net(batch) - 1) ** 2) * (0.9**epoch + 0.5**self.current_epoch)

        self.losses.append(np.array(self.manual_backward(loss_fn)))
        opt.step()
        opt.zero_grad()


def test_a_loss_weight_scheduled_per_epoch_stays_compiled_for_many_epochs():
    """A value that changes once an epoch traces the loss function at each epoch's first batch only: it
    stays compiled past MAX_TRACES_PER_CODE epochs, with no warning (before: after 8 epochs it ran eagerly
    for the rest of the fit, warned of as changing every batch), and every loss is the eager fit's."""
    import warnings

    from audiotrain.train.manual_compile import MAX_TRACES_PER_CODE

    epochs = MAX_TRACES_PER_CODE + 3
    compiled, eager = ClosesOverTheEpoch(), ClosesOverTheEpoch()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        _fit(compiled, _data(n=2), True, max_epochs=epochs)
    assert not [w for w in record if "runs eagerly" in str(w.message)]
    assert compiled._calls == epochs  # (one trace an epoch, the second batch reusing it)
    _fit(eager, _data(n=2), False, max_epochs=epochs)
    np.testing.assert_array_equal(np.array(compiled.losses), np.array(eager.losses))


def test_a_loss_function_mistake_is_raised_as_without_compile_with_no_word_of_tracing():
    """A loss function that returns no scalar fails its trace and then its eager call: the eager call's
    error is raised, as with Trainer(compile=False), and nothing is said of compiling."""

    class Vector(ClosesOverTheBatch):
        def training_step(self, batch, batch_idx):
            self.manual_backward(lambda: self.net(batch))

    import warnings

    with (
        warnings.catch_warnings(record=True) as record,
        pytest.raises(TypeError, match="fn must return the loss"),
    ):
        warnings.simplefilter("always")
        _fit(Vector(), _data(n=1), True)
    assert not [w for w in record if "runs eagerly" in str(w.message)]


_Pair = namedtuple("_Pair", "x scale")


class BindsTheBatchAsADefault(ClosesOverTheBatch):
    """`lambda b=batch: ...` (the loop-variable habit) and a namedtuple argument: the batch is bound in the
    function's defaults and given inside a namedtuple, not closed over."""

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        pair = _Pair(batch, mx.array(2.0))

        def loss_fn(p, b=batch):
            self._calls += 1
            return mx.mean((self.net(b) * p.scale - p.x.sum()) ** 2)

        self.losses.append(np.array(self.manual_backward(loss_fn, pair)))
        opt.step()
        opt.zero_grad()


def test_a_batch_bound_as_a_default_or_in_a_namedtuple_is_an_input_too():
    batches = _data(n=3)
    compiled, eager = BindsTheBatchAsADefault(), BindsTheBatchAsADefault()
    _fit(compiled, batches, True)
    _fit(eager, batches, False)
    assert compiled._calls == 1
    np.testing.assert_array_equal(np.array(compiled.losses), np.array(eager.losses))


class ReadsAWeight(ClosesOverTheBatch):
    """The loss function reads a plain number from the module, which a hook changes at an epoch start."""

    def __init__(self):
        super().__init__()
        self.aux_weight = 1.0

    def on_train_epoch_start(self):
        self.aux_weight = 1.0 + self.current_epoch

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        self.losses.append(
            np.array(self.manual_backward(lambda: mx.mean(self.net(batch) ** 2) * self.aux_weight))
        )
        opt.step()
        opt.zero_grad()


def test_a_number_the_loss_function_reads_from_the_module_is_read_afresh_when_it_changes():
    """The trace holds `self.aux_weight` as a constant of its graph: changed by a hook, the function is
    traced again, so the second epoch's losses use the new weight as the eager ones do."""
    batches = _data(n=2)
    compiled, eager = ReadsAWeight(), ReadsAWeight()
    _fit(compiled, batches, True, max_epochs=3)
    _fit(eager, batches, False, max_epochs=3)
    np.testing.assert_array_equal(np.array(compiled.losses), np.array(eager.losses))


class KeepsWhatItComputed(ClosesOverTheBatch):
    """The loss function appends each batch's loss to a list on the module (Lightning's
    `self._training_step_outputs.append(loss)`) and keeps its output in a private attribute."""

    def __init__(self):
        super().__init__()
        self._kept = []

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()

        def loss_fn():
            out = self.net(batch)
            self._last = out
            loss = mx.mean((out - 1) ** 2)
            self._kept.append(loss)
            return loss

        self.manual_backward(loss_fn)
        opt.step()
        opt.zero_grad()


def test_a_loss_function_appending_to_the_module_runs_eagerly_and_keeps_every_batchs_value():
    """What a trace appends is a new input of the next call (MLX keeps a module's lists in its state), so
    each batch traced the function again, into a compile cache growing with the list. Such a loss function
    runs eagerly, said once, and the list holds every batch's loss, the eager fit's."""
    batches = _data(n=3)
    compiled, eager = KeepsWhatItComputed(), KeepsWhatItComputed()
    with pytest.warns(UserWarning, match=r"runs eagerly .* it adds to self._kept"):
        _fit(compiled, batches, True)
    _fit(eager, batches, False)
    np.testing.assert_array_equal(np.array(compiled._kept), np.array(eager._kept))
    np.testing.assert_array_equal(np.array(compiled._last), np.array(eager._last))
    for name, value in _weights(compiled).items():
        np.testing.assert_array_equal(value, _weights(eager)[name], err_msg=name)


class ScheduledGAN(GAN):
    def configure_optimizers(self):
        return [
            {
                "optimizer": optim.SGD(learning_rate=optim.linear_schedule(0.1, 0.01, 40)),
                "params": self.generator,
            },
            {"optimizer": optim.SGD(learning_rate=0.1), "params": self.discriminator},
        ]


@pytest.mark.filterwarnings("ignore:StochasticWeightAveraging. SWA is only supported every epoch")
def test_a_schedule_taken_over_by_swa_leaves_the_compiled_update_as_the_eager_one():
    """StochasticWeightAveraging takes the generator's schedule off its optimizer and sets the rate itself:
    the compiled update, which evaluated the schedule in its graph, is traced again (it went on with the
    schedule's rates), and the fit equals the eager one."""
    from audiotrain.train.callbacks import StochasticWeightAveraging

    def fit(compile):
        model = ScheduledGAN()
        swa = StochasticWeightAveraging(swa_lrs=0.5, swa_epoch_start=2, annealing_epochs=0)
        _fit(model, _data(n=3), compile, max_epochs=3, callbacks=[swa])
        return _weights(model)

    compiled, eager = fit(True), fit(False)
    for name, value in compiled.items():
        np.testing.assert_array_equal(value, eager[name], err_msg=name)


class AppendsToAList(ClosesOverTheBatch):
    """Lightning's habit `self.step_outputs.append(loss)` in a manual step, on a list named `name`."""

    def __init__(self, name):
        super().__init__()
        self.name = name
        setattr(self, name, [])

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        loss = self.manual_backward(lambda: mx.mean((self.net(batch) - 1) ** 2))
        getattr(self, self.name).append(loss)
        opt.step()
        opt.zero_grad()


@pytest.mark.parametrize("compile", [False, True])
def test_arrays_appended_to_a_public_list_attribute_are_refused_naming_it(compile):
    """MLX makes every array in a module's list a trainable parameter: the second batch's opt.step() failed
    with a bare IndexError inside mlx's tree_map (its optimizer had no state for `step_outputs.0`). Refused
    at manual_backward, naming the attribute and the way out (a private name); a private list works."""
    with pytest.raises(
        ValueError, match=r"AppendsToAList.step_outputs \(a list attribute\).*self._step_outputs"
    ):
        _fit(AppendsToAList("step_outputs"), _data(n=3), compile)

    class AtTheEpochEnd(AppendsToAList):  # (what trains changed: the step rebuilt at the epoch start)
        def training_step(self, batch, batch_idx):
            opt = self.optimizers()
            self.manual_backward(lambda: mx.mean((self.net(batch) - 1) ** 2))
            opt.step()
            opt.zero_grad()

        def on_train_epoch_end(self):
            getattr(self, self.name).append(mx.zeros(2))

    with pytest.raises(ValueError, match=r"AtTheEpochEnd.step_outputs \(a list attribute\)"):
        _fit(AtTheEpochEnd("step_outputs"), _data(n=2), compile, max_epochs=2)
    model = AppendsToAList("_step_outputs")
    _fit(model, _data(n=3), compile)
    assert len(model._step_outputs) == 3


@dataclasses.dataclass
class _Batch:
    x: mx.array
    scale: float = 0.5

    def __post_init__(self):
        self.target = self.x.mean()  # (an attribute beside the fields)


class TakesADataclassBatch(ClosesOverTheBatch):
    """The batch wrapped in a dataclass, given to the loss function and closed over."""

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        given, closed = _Batch(batch), _Batch(batch * 2, scale=0.1)

        def loss_fn(b):
            self._calls += 1
            return mx.mean((self.net(b.x) * b.scale - b.target + closed.x.mean() * closed.scale) ** 2)

        self.losses.append(np.array(self.manual_backward(loss_fn, given)))
        opt.step()
        opt.zero_grad()


def test_a_dataclass_batch_is_an_input_traced_once_as_a_namedtuple_is():
    """A dataclass batch (a new object every batch) was keyed by its identity: traced again at every batch,
    then run eagerly after a few with a warning. Its arrays are inputs now, as a namedtuple's: one trace,
    the eager fit's losses, no warning."""
    import warnings

    batches = _data(n=10)
    compiled, eager = TakesADataclassBatch(), TakesADataclassBatch()
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*runs eagerly")
        _fit(compiled, batches, True)
    _fit(eager, batches, False)
    assert compiled._calls == 1
    np.testing.assert_array_equal(np.array(compiled.losses), np.array(eager.losses))
    assert np.isfinite(np.array(compiled.losses)).all()


class _Loss:
    """A callable object: no plain function to compile, so it runs eagerly without a word."""

    def __init__(self, net, batch):
        self.net, self.batch = net, batch

    def __call__(self):
        return mx.mean((self.net(self.batch) - 1) ** 2)


class RecoversFromAMistake(ClosesOverTheBatch):
    """A first manual_backward that fails (no scalar loss), caught by the step, then an eager one."""

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        with pytest.raises(TypeError, match="fn must return the loss"):
            self.manual_backward(lambda: self.net(batch))
        self.manual_backward(_Loss(self.net, batch))
        opt.step()
        opt.zero_grad()


def test_a_failed_trace_whose_eager_call_raised_is_not_told_at_a_later_eager_call():
    """The failed trace of a loss function whose eager call then raised is forgotten: a later loss function
    that runs eagerly anyway is not taken for it ("runs eagerly" named the first one)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*runs eagerly")
        _fit(RecoversFromAMistake(), _data(n=2), True)


class UnfreezesAListOfScales(ClosesOverTheBatch):
    """A list of arrays frozen at first, unfrozen at the second epoch's start (not appended: held before)."""

    def __init__(self):
        super().__init__()
        self.scales = [mx.ones((1,))]
        self.freeze(keys=["scales"], recurse=False)

    def on_train_epoch_start(self):
        if self.current_epoch == 1:
            self.unfreeze(keys=["scales"], recurse=False)

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        self.manual_backward(lambda: mx.mean((self.net(batch) * self.scales[0] - 1) ** 2))
        opt.step()
        opt.zero_grad()


@pytest.mark.parametrize("compile", [False, True])
def test_a_list_of_arrays_unfrozen_mid_fit_trains_and_is_not_taken_for_an_appended_one(compile):
    model = UnfreezesAListOfScales()
    _fit(model, _data(n=2), compile, max_epochs=2)
    assert float(model.scales[0][0]) != 1.0


@dataclasses.dataclass
class _Config:
    beta: float = 1.0


class ReadsAConfigField(ClosesOverTheBatch):
    """The loss weight in a dataclass config attribute (`self.cfg.beta`), or in the same object closed over,
    annealed by a hook at each epoch start."""

    def __init__(self, closed):
        super().__init__()
        self.cfg, self.closed = _Config(), closed

    def on_train_epoch_start(self):
        self.cfg.beta = 1.0 + self.current_epoch

    def training_step(self, batch, batch_idx):
        opt, cfg = self.optimizers(), self.cfg
        if self.closed:
            loss = self.manual_backward(lambda: mx.mean(self.net(batch) ** 2) * cfg.beta)
        else:
            loss = self.manual_backward(lambda: mx.mean(self.net(batch) ** 2) * self.cfg.beta)
        self.losses.append(np.array(loss))
        opt.step()
        opt.zero_grad()


@pytest.mark.parametrize("closed", [False, True])
def test_a_config_objects_field_the_loss_function_reads_is_read_afresh_when_it_changes(closed):
    """Compiled, `self.cfg.beta` (a dataclass attribute) stayed the first trace's 1.0 for the whole fit, and
    the same object closed over (keyed by its identity) too: the losses of later epochs differed from the
    eager fit's, silently. Now the field is read afresh where it changed, as a number attribute is."""
    batches = _data(n=2)
    compiled, eager = ReadsAConfigField(closed), ReadsAConfigField(closed)
    _fit(compiled, batches, True, max_epochs=3)
    _fit(eager, batches, False, max_epochs=3)
    np.testing.assert_array_equal(np.array(compiled.losses), np.array(eager.losses))


class ReplacesItsNet(ClosesOverTheBatch):
    """At the second epoch's start, the network is replaced by a new one whose dropout is off (a
    pretrained layer swapped in, frozen to eval mode)."""

    def on_train_epoch_start(self):
        if self.current_epoch == 1:
            mx.random.seed(5)
            self.net = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 1))
            self.net.layers[1].eval()


def test_a_submodule_replaced_mid_fit_is_run_in_its_own_mode():
    """The compiled manual_backward's graphs were keyed by the `training` flags of the submodules the fit
    began with: a network replaced mid-fit, its dropout in eval mode, reused the graph traced with dropout
    on (the old network's mode), and its losses differed from the eager fit's, silently. Now the flags are
    those of the module's submodules at each call."""
    batches = _data(n=2)
    compiled, eager = ReplacesItsNet(), ReplacesItsNet()
    _fit(compiled, batches, True, max_epochs=2)
    _fit(eager, batches, False, max_epochs=2)
    np.testing.assert_array_equal(np.array(compiled.losses), np.array(eager.losses))


class HoldsItsFirstBatch(ClosesOverTheBatch):
    """Each batch's loss function closes over an array computed in the step; the first one is watched."""

    def __init__(self):
        super().__init__()
        self._first = None

    def training_step(self, batch, batch_idx):
        opt, x = self.optimizers(), batch * 2.0
        if self._first is None:
            self._first = weakref.ref(x)
        loss = self.manual_backward(lambda: mx.mean(self.net(x) ** 2))
        self.losses.append(np.array(loss))
        opt.step()
        opt.zero_grad()


def test_a_compiled_loss_function_does_not_keep_its_first_batchs_arrays_alive():
    """Each compiled loss function kept the loss function of its first call, and so the arrays it closed
    over (a batch, what the step computed from it), alive for the whole fit: up to 8 batches per loss
    function. Now the compiled function keeps the code and the non-array values its key needs; the first
    batch's arrays are freed once its step is done, as eagerly."""
    model = HoldsItsFirstBatch()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # (compiled, not run eagerly)
        _fit(model, _data(n=3), True)
    gc.collect()
    assert model._first() is None


class _MemoryBank:
    """MoCo's queue of past outputs, in a plain object the module points to (no module: not its state)."""

    def __init__(self):
        self.queue = mx.zeros((1,))


class ReadsAMemoryBank(ClosesOverTheBatch):
    """The loss function reads `self.bank.queue`, an array a batch-end hook reassigns."""

    def __init__(self):
        super().__init__()
        self.bank = _MemoryBank()

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        loss = self.manual_backward(lambda: mx.mean((self.net(batch) - self.bank.queue) ** 2))
        self.losses.append(np.array(loss))
        opt.step()
        opt.zero_grad()

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.bank.queue = self.bank.queue + 1.0


def test_an_array_held_by_a_plain_object_the_loss_function_reads_is_read_afresh():
    """`self.bank.queue`, an array in a plain Python object (not a module, so not the compiled function's
    state) was a constant of the graph traced at the first batch: every later batch's loss used the first
    queue, silently. Now the arrays such an object holds are watched as the numbers are: one reassigned since
    traces the loss function again, and every loss is the eager one. Reassigned at every batch, it runs
    eagerly after a few traces, the warning naming the array and the fix."""
    batches = _data(n=10)
    compiled, eager = ReadsAMemoryBank(), ReadsAMemoryBank()
    with pytest.warns(UserWarning, match=r"self\.bank\.queue, an array held by an object") as caught:
        _fit(compiled, batches, True)
    _fit(eager, batches, False)
    np.testing.assert_array_equal(np.array(compiled.losses), np.array(eager.losses))
    said = [str(w.message) for w in caught if "runs eagerly" in str(w.message)]
    assert len(said) == 1 and "Put the array on the module (self.queue = ...," in said[0], said
