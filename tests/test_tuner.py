"""Tuner(trainer).lr_find: Lightning's learning-rate range test, run by the Trainer's own compiled step."""

import builtins
import math
import warnings

import audiotrain  # noqa: F401  (before mlx)
from audiotrain import DataLoader, OptimizerConfig, Trainer, TrainModule, Tuner, seed_everything
from audiotrain.train import LRFinder
from audiotrain.train.callbacks import EarlyStopping, LearningRateFinder, ModelCheckpoint, ReduceLROnPlateau
from audiotrain.train.loggers import CSVLogger
from audiotrain.train.schedulers import WarmupCosineScheduler
from audiotrain.train.step import trainable_names

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from tasks import TinyClassifier, make_batches, make_data, weights


def quiet_trainer(root, **settings):
    settings = {"enable_progress_bar": False, "logger": False, "enable_checkpointing": False, **settings}
    return Trainer(default_root_dir=root, **settings)


class Slope(TrainModule):
    """loss = a/2 * w², trained by SGD: each update is w -= lr * a * w, so the rate each step used is read
    back from w (recorded after every batch by the module's own hook), and a rate above 2/a diverges."""

    def __init__(self, a: float = 1.0, lr: float = 0.1):
        super().__init__()
        self.w = mx.ones((1,))
        self.a = a
        self.lr = lr
        object.__setattr__(self, "seen", [])

    def compute_loss(self, batch):
        return 0.5 * self.a * mx.sum(self.w**2) + 0.0 * mx.sum(batch)

    def configure_optimizers(self):
        return optim.SGD(learning_rate=self.lr)

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.seen.append(float(self.w.item()))


def ones(n: int = 8):
    return [mx.ones((2,)) for _ in range(n)]


def rates_used(module: Slope) -> list[float]:
    """The rate of each update, from w before and after it: w' = w (1 - lr a)."""
    w = [1.0, *module.seen]
    return [(1 - after / before) / module.a for before, after in zip(w, w[1:])]


# ------------------------------------------------------------------ the sweep
class ScheduledSlope(Slope):
    """A schedule from configure_optimizers: the sweep trains at its own rates all the same."""

    def configure_optimizers(self):
        return optim.SGD(learning_rate=optim.step_decay(self.lr, 0.5, 1))


@pytest.mark.parametrize("slope", [Slope, ScheduledSlope])
def test_exponential_sweep_trains_each_step_at_its_rate_and_puts_the_weights_back(tmp_path, slope):
    module = slope(a=1.0)
    finder = Tuner(quiet_trainer(tmp_path)).lr_find(
        module,
        ones(4),
        min_lr=1e-3,
        max_lr=1e-1,
        num_training=5,
        early_stop_threshold=None,
        update_attr=False,
    )
    expected = [1e-3 * 100 ** (k / 4) for k in range(5)]
    assert finder.results["lr"] == pytest.approx(expected, rel=1e-12)
    assert finder.results["lr"][0] == 1e-3 and finder.results["lr"][-1] == pytest.approx(1e-1)
    # The compiled update ran with those rates (float32), over the loader's epochs (4 batches, 5 steps).
    assert rates_used(module) == pytest.approx(expected, rel=1e-3)
    assert len(finder.results["loss"]) == 5
    assert float(module.w.item()) == 1.0  # put back


def test_linear_sweep_rates_and_the_smoothed_loss(tmp_path):
    module = Slope(a=1.0)
    finder = Tuner(quiet_trainer(tmp_path)).lr_find(
        module, ones(), min_lr=0.01, max_lr=0.5, num_training=6, mode="linear", update_attr=False
    )
    expected = [0.01 + k / 5 * 0.49 for k in range(6)]
    assert finder.results["lr"] == pytest.approx(expected, rel=1e-12)
    assert rates_used(module) == pytest.approx(expected, rel=1e-3)
    # Each step's loss is 0.5 w² before its update; smoothed with beta 0.98, bias-corrected (the first point
    # is the first loss itself, not half of it as in Lightning).
    raw = [0.5 * w**2 for w in [1.0, *module.seen[:-1]]]
    avg, smoothed = 0.0, []
    for n, loss in enumerate(raw, start=1):
        avg = 0.98 * avg + 0.02 * loss
        smoothed.append(avg / (1 - 0.98**n))
    assert finder.results["loss"] == pytest.approx(smoothed, rel=1e-5)
    assert finder.results["loss"][0] == pytest.approx(0.5)


def test_the_sweep_stops_where_the_loss_diverges_and_none_runs_every_step(tmp_path):
    # SGD on a/2 w² diverges above lr = 2/a = 2: the smoothed loss passes 4x its best soon after.
    diverging = Tuner(quiet_trainer(tmp_path)).lr_find(
        Slope(), ones(), min_lr=1e-2, max_lr=1e3, num_training=40, update_attr=False
    )
    losses = diverging.results["loss"]
    assert 2 < len(losses) < 40
    assert losses[-1] > 4.0 * min(losses[:-1])  # the step that stopped it is recorded, as in Lightning
    assert all(value <= 4.0 * min(losses[: i + 1]) for i, value in enumerate(losses[:-1]))
    assert diverging.results["lr"][-1] > 2.0
    # None: every step, even where the loss overflows (non-finite updates skipped, no FloatingPointError).
    everything = Tuner(quiet_trainer(tmp_path)).lr_find(
        Slope(),
        ones(),
        min_lr=1e-2,
        max_lr=1e3,
        num_training=40,
        early_stop_threshold=None,
        update_attr=False,
    )
    assert len(everything.results["loss"]) == 40


class LossIsTheBatch(TrainModule):
    """Each batch's loss is the batch's value, whatever the rate: the sweep's recorded curve is known."""

    def __init__(self):
        super().__init__()
        self.w = mx.zeros((1,))
        self.lr = 0.1

    def compute_loss(self, batch):
        return mx.mean(batch) + 0.0 * mx.sum(self.w)

    def configure_optimizers(self):
        return optim.SGD(learning_rate=self.lr)


def smoothed(raw):
    avg, out = 0.0, []
    for n, loss in enumerate(raw, start=1):
        avg = 0.98 * avg + 0.02 * loss
        out.append(avg / (1 - 0.98**n))
    return out


def test_the_sweep_stops_at_threshold_times_the_best_loss_so_far_not_the_first(tmp_path):
    # The loss falls from 1 to 0.1, then rises to 0.5: never twice the first, soon twice the best.
    raw = [1.0] + [0.1] * 29 + [0.5] * 30
    finder = Tuner(quiet_trainer(tmp_path)).lr_find(
        LossIsTheBatch(),
        [mx.full((2,), v) for v in raw],
        num_training=60,
        early_stop_threshold=2.0,
        update_attr=False,
    )
    curve = smoothed(raw)
    stop = next(n for n in range(1, 60) if curve[n] > 2.0 * min(curve[:n]))
    assert 30 < stop < 59
    assert finder.results["loss"] == pytest.approx(curve[: stop + 1], rel=1e-5)


def test_the_sweep_stops_at_the_first_non_finite_loss(tmp_path):
    raw = [1.0] * 5 + [math.nan] * 15
    with pytest.warns(UserWarning, match=r"non-finite \(NaN or inf\) at step 6 of 20"):
        finder = Tuner(quiet_trainer(tmp_path)).lr_find(
            LossIsTheBatch(), [mx.full((2,), v) for v in raw], num_training=20, update_attr=False
        )
    assert len(finder.results["loss"]) == 6 and math.isnan(finder.results["loss"][-1])


def test_a_loss_that_jumps_to_nan_from_its_best_is_warned_of_as_not_a_divergence(tmp_path):
    # A NaN batch at step 31 of a flat curve stopped the sweep "where the loss diverged", low in a
    # sweep to 1 (1.2e-4 here), and lr_find set a rate from the steps before it, saying nothing.
    raw = [1.0] * 30 + [math.nan] + [1.0] * 29
    with pytest.warns(UserWarning) as caught:
        finder = Tuner(quiet_trainer(tmp_path)).lr_find(
            LossIsTheBatch(), [mx.full((2,), v) for v in raw], num_training=60
        )
    assert len(finder.results["loss"]) == 31
    messages = [str(w.message) for w in caught if "non-finite" in str(w.message)]
    assert len(messages) == 1 and messages[0].startswith(
        "Tuner.lr_find: the loss was non-finite (NaN or inf) at step 31 of 60 (lr="
    )
    assert "from 1 (its best so far: 1)" in messages[0] and "Check the data and the loss" in messages[0]
    # A loss that grew into inf is a divergence: no such warning.
    raw = [1.0] * 30 + [10.0, 100.0, 1e4, math.inf] + [1.0] * 26
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Tuner(quiet_trainer(tmp_path)).lr_find(
            LossIsTheBatch(), [mx.full((2,), v) for v in raw], num_training=60, early_stop_threshold=None
        )
    assert not [w for w in caught if "non-finite" in str(w.message)]


def test_with_accumulation_a_steps_loss_is_the_mean_of_its_window(tmp_path):
    finder = Tuner(quiet_trainer(tmp_path, accumulate_grad_batches=2)).lr_find(
        LossIsTheBatch(),
        [mx.full((2,), v) for v in (1.0, 3.0, 5.0, 9.0)],
        num_training=2,
        early_stop_threshold=None,
        update_attr=False,
    )
    assert finder.results["loss"] == pytest.approx(smoothed([2.0, 7.0]), rel=1e-6)


# ------------------------------------------------------------------ the suggestion
def finder_with(lrs, losses, mode="linear"):
    finder = LRFinder(mode, lrs[0], lrs[-1], len(lrs))
    finder.results = {"lr": list(lrs), "loss": list(losses)}
    return finder


def test_suggestion_is_the_rate_of_the_steepest_descent():
    lrs = np.linspace(0.0, np.pi, 31)
    finder = finder_with(lrs, np.cos(lrs))  # d/dlr cos = -sin: steepest at pi/2, index 15
    assert finder.suggestion() == lrs[15]
    # skip_begin leaves out a steeper start; non-finite points are left out.
    losses = np.cos(lrs)
    losses[2] = -50.0
    assert finder_with(lrs, losses).suggestion() == lrs[15]
    assert finder_with(lrs, losses).suggestion(skip_begin=0) in (lrs[1], lrs[2], lrs[3])
    losses = np.cos(lrs)
    losses[15] = np.nan
    assert finder_with(lrs, losses).suggestion() in (lrs[14], lrs[16])
    # A NaN is left out before the gradients: its neighbours' slopes come from the finite points around it.
    nan_inside = finder_with([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [5.0, 4.9, math.nan, 4.5, 2.0, 1.9])
    assert nan_inside.suggestion(skip_begin=0, skip_end=0) == 0.4
    # Gradients against the rates, not the index: an uneven spacing moves the steepest point.
    uneven = np.array([*np.linspace(0, 1, 20), *np.linspace(1.5, 10, 20)])
    loss = np.array([*(-0.1 * uneven[:20]), *(-0.1 - 0.5 * (uneven[20:] - 1))])
    loss[25:] = loss[24]
    assert finder_with(uneven, loss).suggestion(skip_begin=0) in uneven[19:25]
    # An exponential sweep is read per decade of rate (its evenly spaced steps): the larger drop is the
    # steeper, not a small one where the rates are close (against the rates, 0.1 over 9e-4 beat 0.5 over
    # 0.09).
    rates = np.geomspace(1e-4, 1.0, 30)
    loss = np.ones(30)
    loss[11:] -= 0.1  # over lr 2.4e-3 -> 3.3e-3
    loss[26:] -= 0.5  # over lr 0.24 -> 0.33
    assert finder_with(rates, loss, mode="exponential").suggestion() in (rates[25], rates[26])


class LeastSquares(TrainModule):
    """y = x @ w_true on unit-normal features, by SGD: the loss's curvature is about 1, so a rate near 1
    trains in a step or two and one above about 2 diverges: the good rate is known."""

    def __init__(self, lr: float = 1e-3):
        super().__init__()
        self.w = mx.zeros((8,))
        self.lr = lr

    def compute_loss(self, batch):
        x, y = batch
        return 0.5 * mx.mean((x @ self.w - y) ** 2)

    def configure_optimizers(self):
        return optim.SGD(learning_rate=self.lr)


def least_squares_batches(n: int = 256, batch_size: int = 256):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    y = x @ rng.normal(size=(8,)).astype(np.float32)
    starts = range(0, n, batch_size)
    return [(mx.array(x[i : i + batch_size]), mx.array(y[i : i + batch_size])) for i in starts]


def test_an_exponential_sweep_suggests_a_rate_near_the_known_good_one(tmp_path):
    # One full batch: a smooth curve, no batch-to-batch noise. Against the rates themselves, its slow start
    # (rates 2e-5 apart) was the steepest slope: lr_find suggested and set 3.2e-4, a rate that barely trains
    # (as Lightning 2.5.3 does, its issue #21141). Per decade of rate, the plot's log axis, the loss falls
    # fastest at 0.1-1.
    module = LeastSquares()
    finder = Tuner(quiet_trainer(tmp_path)).lr_find(
        module, least_squares_batches(), min_lr=1e-4, max_lr=10.0, num_training=100
    )
    assert 0.03 <= finder.suggestion() <= 1.5 and module.lr == finder.suggestion()


def test_suggestion_with_too_few_points_or_none_finite_is_none_with_a_warning():
    lrs = np.linspace(0.1, 1.0, 12)
    with pytest.warns(UserWarning, match="1 finite loss.*raise num_training"):
        assert finder_with(lrs, np.ones(12)).suggestion() is None
    with pytest.warns(UserWarning, match="every loss of the sweep's 12 steps was non-finite"):
        assert finder_with(lrs, [math.nan] * 12).suggestion() is None
    with pytest.raises(ValueError, match="skip_end=-1"):
        finder_with(lrs, np.ones(12)).suggestion(skip_end=-1)
    with pytest.warns(UserWarning, match="only 1 of the 12 losses left after the skips are finite"):
        assert finder_with(lrs, [math.nan] * 11 + [1.0]).suggestion(skip_begin=0, skip_end=0) is None
    with pytest.raises(ValueError, match=r"mode='cosine'\): expected 'exponential' or 'linear'"):
        LRFinder("cosine", 1e-4, 1.0, 10)


# ------------------------------------------------------------------ update_attr
def test_update_attr_sets_lr_and_the_next_fit_trains_with_it(tmp_path):
    seed_everything(0)
    module = TinyClassifier(lr=1e-3)
    trainer = quiet_trainer(tmp_path, max_steps=2)
    finder = Tuner(trainer).lr_find(module, make_batches(256), num_training=30)
    suggested = finder.suggestion()
    assert suggested is not None and suggested != 1e-3
    assert module.lr == suggested
    trainer.fit(module, make_batches(32))
    assert trainer.learning_rate() == pytest.approx(suggested, rel=1e-6)


class FromHparams(TinyClassifier):
    def __init__(self, learning_rate: float = 1e-3):
        super().__init__()
        del self.lr
        self.save_hyperparameters()

    def configure_optimizers(self):
        return OptimizerConfig(optim.SGD(learning_rate=self.hparams.learning_rate))


class Peaked(TinyClassifier):
    def __init__(self):
        super().__init__()
        self.peak = 0.5

    def configure_optimizers(self):
        return optim.SGD(learning_rate=self.peak)


def test_update_attr_writes_hparams_and_a_named_attribute(tmp_path):
    module = FromHparams()
    finder = Tuner(quiet_trainer(tmp_path)).lr_find(module, make_batches(256), num_training=20)
    assert module.hparams.learning_rate == finder.suggestion()
    named = Peaked()
    found = Tuner(quiet_trainer(tmp_path)).lr_find(
        named, make_batches(256), num_training=20, attr_name="peak"
    )
    assert named.peak == found.suggestion() != 0.5
    assert named.lr == 1e-2  # only the attribute named


def test_a_rate_configure_optimizers_does_not_read_is_warned_of(tmp_path):
    class Fixed(TinyClassifier):
        def configure_optimizers(self):
            return optim.SGD(learning_rate=0.05)

    with pytest.warns(UserWarning, match="gave the optimizer learning_rate=0.05 while lr was 0.01"):
        Tuner(quiet_trainer(tmp_path)).lr_find(Fixed(), make_batches(256), num_training=20)


# ------------------------------------------------------------------ restoration
def shuffled_loader():
    x, y = make_data(64)
    return DataLoader(list(zip(x, y, strict=True)), batch_size=8, shuffle=True)


def full_trainer(root):
    return Trainer(
        default_root_dir=root,
        max_epochs=2,
        enable_progress_bar=False,
        logger=CSVLogger(root),
        callbacks=[EarlyStopping(monitor="val_loss", patience=5), ModelCheckpoint(save_last=True)],
    )


def test_fit_after_lr_find_trains_exactly_as_fit_alone(tmp_path):
    # Dropout and a shuffled loader without a seed of its own: the random state, the loader's position and
    # seed, the weights, the Trainer's counters and callbacks all matter.
    seed_everything(3)
    module, loader, val = TinyClassifier(dropout=0.3), shuffled_loader(), make_batches(32)
    trainer = full_trainer(tmp_path / "a")
    finder = Tuner(trainer).lr_find(module, loader, val, num_training=12, update_attr=False)
    assert len(finder.results["lr"]) == 12
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").rglob("*"))  # nothing written
    assert trainer.global_step == 0 and trainer.history == {} and trainer.optimizer is None
    assert trainer.early_stopping_callback.wait_count == 0 and loader.seed is None
    assert module._trainer is None and module.training
    trainer.fit(module, loader, val)

    seed_everything(3)
    alone, alone_loader = TinyClassifier(dropout=0.3), shuffled_loader()
    reference = full_trainer(tmp_path / "b")
    reference.fit(alone, alone_loader, val)
    after, expected = weights(module), weights(alone)
    assert all(np.array_equal(after[k], expected[k]) for k in expected)
    assert trainer.global_step == reference.global_step
    assert trainer.history["train_loss"] == reference.history["train_loss"]


class KeepsItsOptimizer(TinyClassifier):
    """An optimizer made once, with a schedule: the sweep sets its own rates, then puts both back."""

    def __init__(self):
        super().__init__()
        object.__setattr__(self, "optimizer", optim.AdamW(learning_rate=WarmupCosineScheduler(1e-2, 2, 12)))

    def configure_optimizers(self):
        return self.optimizer


def test_an_optimizer_the_module_keeps_gets_its_state_and_schedule_back(tmp_path):
    seed_everything(1)
    module = KeepsItsOptimizer()
    trainer = quiet_trainer(tmp_path / "a", max_epochs=2)
    finder = Tuner(trainer).lr_find(module, make_batches(64), num_training=10, update_attr=False)
    assert finder.results["lr"][-1] == 1.0  # the sweep's rates, not the schedule's
    assert "learning_rate" in module.optimizer._schedulers
    trainer.fit(module, make_batches(64))
    seed_everything(1)
    alone = KeepsItsOptimizer()
    quiet_trainer(tmp_path / "b", max_epochs=2).fit(alone, make_batches(64))
    after, expected = weights(module), weights(alone)
    assert all(np.array_equal(after[k], expected[k]) for k in expected)


# ------------------------------------------------------------------ refusals
@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"min_lr": 0.0}, ValueError, r"min_lr=0.0\): expected a finite number > 0"),
        ({"min_lr": -1e-3}, ValueError, "min_lr=-0.001"),
        ({"max_lr": 1e-9}, ValueError, r"max_lr=1e-09\): expected a finite number > min_lr=1e-08"),
        ({"max_lr": math.inf}, ValueError, "max_lr=inf"),
        ({"min_lr": 1e-3, "max_lr": 1e-3}, ValueError, r"max_lr=0.001\): expected a finite number > min_lr"),
        ({"num_training": 1}, ValueError, r"num_training=1\): expected an int >= 2"),
        ({"num_training": 10.0}, ValueError, "num_training=10.0"),
        ({"num_training": True}, ValueError, r"num_training=True\): expected an int >= 2"),
        ({"num_training": np.int64(1)}, ValueError, r"num_training=.*1\)?\): expected an int >= 2"),
        ({"mode": "cosine"}, ValueError, r"mode='cosine'\): expected 'exponential' or 'linear'"),
        ({"early_stop_threshold": 0}, ValueError, r"early_stop_threshold=0\).*or None"),
        ({"early_stop_threshold": -4.0}, ValueError, "early_stop_threshold=-4.0"),
        ({"method": "validate"}, ValueError, "method='validate'"),
        ({"dataloaders": [1]}, TypeError, "dataloaders=.*train_dataloaders="),
        ({"update_attr": "yes"}, TypeError, "update_attr='yes'"),
    ],
)
def test_bad_arguments_are_refused_by_name(tmp_path, arguments, error, message):
    module = TinyClassifier()
    with pytest.raises(error, match=message):
        Tuner(quiet_trainer(tmp_path)).lr_find(module, make_batches(32), **arguments)


def test_refusals_of_what_the_sweep_needs(tmp_path):
    tuner = Tuner(quiet_trainer(tmp_path))
    with pytest.raises(TypeError, match="no training batches: pass train_dataloaders="):
        tuner.lr_find(TinyClassifier())
    nameless = TinyClassifier()
    del nameless.lr
    with pytest.raises(
        AttributeError, match="no learning-rate attribute 'lr' or 'learning_rate'.*attr_name="
    ):
        tuner.lr_find(nameless, make_batches(32))
    # (Lightning 2.6.6: "The attribute name for the learning rate was set to peak_lr, but could not find this
    # as a field in `model` or `model.hparams`.")
    with pytest.raises(
        AttributeError,
        match="attribute 'peak_lr' in model or model.hparams; check the spelling of attr_name='peak_lr', or",
    ):
        tuner.lr_find(TinyClassifier(), make_batches(32), attr_name="peak_lr")
    with pytest.raises(TypeError, match="Tuner\\(trainer\\): expected an audiotrain Trainer"):
        Tuner(None)
    with pytest.raises(NotImplementedError, match="choose the batch size yourself"):
        tuner.scale_batch_size(TinyClassifier())
    with pytest.warns(UserWarning, match="skipped, since fast_dev_run"):
        assert (
            Tuner(quiet_trainer(tmp_path, fast_dev_run=True)).lr_find(TinyClassifier(), make_batches())
            is None
        )
    with pytest.raises(ValueError, match=r"auto_lr_find=True.*Tuner\(trainer\).lr_find\(module\)"):
        Trainer(auto_lr_find=True)


# ------------------------------------------------------------------ plot
def test_plot_draws_the_curve_and_without_matplotlib_says_how_to_install_it(monkeypatch):
    lrs = np.geomspace(1e-4, 1.0, 30)
    finder = finder_with(lrs, np.cos(np.linspace(0, np.pi, 30)), mode="exponential")
    import matplotlib

    matplotlib.use("Agg")
    figure = finder.plot(suggest=True)
    ax = figure.axes[0]
    assert ax.get_xscale() == "log" and len(ax.lines) == 2  # the curve and the suggestion's point
    suggested = finder.suggestion()
    assert ax.lines[1].get_xdata()[0] == suggested
    # Onto the caller's axes (a subplot of their figure), shown only with show=True.
    import matplotlib.pyplot as plt

    shown = []
    monkeypatch.setattr(plt, "show", lambda *a, **k: shown.append(True))
    theirs, (left, right) = plt.subplots(1, 2)
    assert finder.plot(ax=right) is theirs and len(right.lines) == 1 and not left.lines and not shown
    finder.plot(show=True)
    assert shown == [True]

    real_import = builtins.__import__

    def without_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_matplotlib)
    with pytest.raises(ImportError, match="LRFinder.plot needs matplotlib.*pip install matplotlib"):
        finder.plot()
    assert finder.suggestion() == suggested  # what needs no matplotlib still works


def test_a_gradient_accumulation_window_is_one_step_of_the_sweep(tmp_path):
    module = Slope(a=1.0)
    finder = Tuner(quiet_trainer(tmp_path, accumulate_grad_batches=2)).lr_find(
        module, ones(8), min_lr=0.01, max_lr=0.1, num_training=4, mode="linear", update_attr=False
    )
    expected = [0.01, 0.04, 0.07, 0.1]
    assert finder.results["lr"] == pytest.approx(expected)
    assert len(module.seen) == 8 and module.seen[0] == 1.0  # (the first micro-batch does not update)
    per_step = Slope()
    object.__setattr__(per_step, "seen", module.seen[1::2])
    assert rates_used(per_step) == pytest.approx(expected, rel=1e-3)


def test_the_generators_and_the_caller_see_no_draws_and_nothing_is_written(tmp_path):
    class WithItsOwnCheckpoint(TinyClassifier):
        def configure_callbacks(self):
            return [ModelCheckpoint(dirpath=tmp_path / "module_checkpoints", every_n_train_steps=1)]

    seed_everything(5)
    Tuner(quiet_trainer(tmp_path / "root")).lr_find(
        WithItsOwnCheckpoint(dropout=0.5), make_batches(64), num_training=8, update_attr=False
    )
    drawn = (np.random.rand(), float(mx.random.uniform().item()))
    seed_everything(5)
    WithItsOwnCheckpoint(dropout=0.5)
    assert drawn == (np.random.rand(), float(mx.random.uniform().item()))
    assert not (tmp_path / "module_checkpoints").exists() and not (tmp_path / "root").exists()


def test_a_datamodule_gets_its_trainer_back_and_a_failing_sweep_puts_the_module_back(tmp_path):
    class Batches(audiotrain.DataModule):
        lr = 0.5  # (Lightning's lightning_setattr writes a datamodule's too)

        def train_dataloader(self):
            return make_batches(128)

    class FailsAtStep3(TinyClassifier):
        def on_train_batch_start(self, batch, batch_idx):
            if self.trainer.global_step == 3:
                raise RuntimeError("boom")

    data = Batches()
    module = TinyClassifier()
    finder = Tuner(quiet_trainer(tmp_path)).lr_find(module, data, num_training=20)  # in the loader's place
    assert data.trainer is None and data.lr == module.lr == finder.suggestion()
    failing = FailsAtStep3()
    before = weights(failing)
    with pytest.raises(RuntimeError, match="boom") as raised:
        Tuner(quiet_trainer(tmp_path)).lr_find(failing, datamodule=data, num_training=20)
    if hasattr(raised.value, "add_note"):  # (Python 3.11)
        assert "learning-rate sweep of Tuner.lr_find" in "".join(raised.value.__notes__)
    after = weights(failing)
    assert all(np.array_equal(after[k], before[k]) for k in before) and failing._trainer is None


def test_a_rate_kept_in_the_datamodules_hparams_gets_the_suggestion(tmp_path, capsys):
    # Lightning 2.6.6 looks for the rate in the datamodule's save_hyperparameters() too: with a module that
    # keeps none, its Tuner(trainer).lr_find(model, datamodule=dm) wrote its suggestion to dm.hparams["lr"]
    # (0.01 -> 0.0178 on its sweep of the same job) and raised nothing.
    class Batches(audiotrain.DataModule):
        def __init__(self):
            super().__init__()
            self.save_hyperparameters({"lr": 0.01})

        def train_dataloader(self):
            return make_batches(128)

    class NoRate(TrainModule):  # (its rate is the datamodule's)
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 3)

        def compute_loss(self, batch):
            x, y = batch
            return mx.mean(nn.losses.cross_entropy(self.fc(x), y))

        def configure_optimizers(self):
            return optim.SGD(learning_rate=self.trainer.datamodule.hparams.lr)

    data, module = Batches(), NoRate()
    trainer = quiet_trainer(tmp_path, enable_progress_bar=True, max_epochs=1)
    finder = Tuner(trainer).lr_find(module, datamodule=data, min_lr=1e-4, max_lr=0.1, num_training=20)
    assert dict(data.hparams) == {"lr": finder.suggestion()} and finder.suggestion() != 0.01
    assert f"lr set to {finder.suggestion():.3g} (datamodule.hparams['lr'])" in capsys.readouterr().err
    trainer.fit(module, datamodule=data)  # (the next fit trains at it)
    assert trainer.learning_rate() == pytest.approx(finder.suggestion(), rel=1e-6)


def test_a_method_named_lr_is_no_place_for_the_suggestion(tmp_path):
    class LrIsAMethod(audiotrain.DataModule):
        def lr(self):  # (not a number the user keeps: lightning_setattr writes attributes only)
            return 0.5

        def train_dataloader(self):
            return make_batches(128)

    data, module = LrIsAMethod(), TinyClassifier()
    finder = Tuner(quiet_trainer(tmp_path)).lr_find(module, datamodule=data, num_training=20)
    assert callable(data.lr) and data.lr() == 0.5 and module.lr == finder.suggestion()


def test_a_sweep_too_short_to_suggest_leaves_the_rate_as_it_was(tmp_path):
    module = TinyClassifier(lr=0.01)
    with pytest.warns(
        UserWarning, match="no learning rate suggested: 0 finite loss.*raise num_training"
    ) as seen:
        finder = Tuner(quiet_trainer(tmp_path)).lr_find(module, make_batches(64), num_training=5)
    assert seen[0].filename == __file__  # (said at the lr_find call)
    assert module.lr == 0.01 and len(finder.results["lr"]) == 5


class TwoGroups(TrainModule):
    """loss = 10 w + 10 v, each descended by an SGD of its own (a MultiOptimizer: two parameter groups)."""

    def __init__(self):
        super().__init__()
        self.w, self.v = mx.zeros((1,)), mx.zeros((1,))
        object.__setattr__(self, "seen", [])

    def compute_loss(self, batch):
        return 10.0 * (mx.sum(self.w) + mx.sum(self.v)) + 0.0 * mx.sum(batch)

    def configure_optimizers(self):
        return optim.MultiOptimizer([optim.SGD(1.0), optim.SGD(0.5)], [lambda path, _: path == "w"])

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.seen.append((float(self.w.item()), float(self.v.item())))


def _four_linear_steps(trainer, module):
    """A sweep of four rates, 0.01 to 0.04 in even steps, that never stops early (these losses go below 0)."""
    return Tuner(trainer).lr_find(
        module, ones(4), min_lr=0.01, max_lr=0.04, num_training=4, mode="linear",
        early_stop_threshold=None, update_attr=False,
    )  # fmt: skip


def test_every_parameter_group_follows_the_sweeps_rates(tmp_path):
    module = TwoGroups()
    finder = _four_linear_steps(quiet_trainer(tmp_path), module)
    assert finder.results["lr"] == pytest.approx([0.01, 0.02, 0.03, 0.04])
    w, v = np.array(module.seen).T
    steps = -np.diff([0.0, *w]) / 10, -np.diff([0.0, *v]) / 10  # each update: 10 x its group's rate
    np.testing.assert_allclose(steps, [finder.results["lr"]] * 2, rtol=1e-5)


def test_the_sweep_clips_the_gradients_as_the_trainer_does(tmp_path):
    # loss = 10 w + 10 v: the gradient's norm is 10 sqrt(2); clipped to 1, each weight moves lr / sqrt(2).
    module = TwoGroups()
    trainer = quiet_trainer(tmp_path, gradient_clip_val=1.0)
    finder = _four_linear_steps(trainer, module)
    assert len(finder.results["lr"]) == 4
    w = np.array(module.seen)[:, 0]
    np.testing.assert_allclose(-np.diff([0.0, *w]), np.array(finder.results["lr"]) / np.sqrt(2), rtol=1e-5)


class SeesBatchMeans(LossIsTheBatch):
    def on_train_batch_start(self, batch, batch_idx):
        vars(self).setdefault("seen", []).append(float(mx.mean(batch).item()))


def test_the_sweep_draws_the_data_order_from_the_trainers_seed(tmp_path):
    # A shuffled loader without a seed of its own takes the Trainer's: the sweep sees the order the fit does.
    def order(seed, tune):
        module = SeesBatchMeans()
        loader = DataLoader([mx.full((1,), float(v)) for v in range(16)], batch_size=4, shuffle=True)
        trainer = quiet_trainer(tmp_path, seed=seed, max_epochs=1)
        if tune:
            Tuner(trainer).lr_find(
                module, loader, num_training=4, early_stop_threshold=None, update_attr=False
            )
        else:
            trainer.fit(module, loader)
        return vars(module)["seen"]

    assert order(7, tune=True) == order(7, tune=False) != order(8, tune=False)


def test_the_sweep_trains_in_the_trainers_precision_and_on_its_limit_train_batches(tmp_path):
    class RecordsItsDtype(LossIsTheBatch):
        def on_train_batch_end(self, outputs, batch, batch_idx):
            vars(self).setdefault("dtypes", []).append(self.w.dtype)

    module = RecordsItsDtype()
    Tuner(quiet_trainer(tmp_path, precision="bf16-true")).lr_find(
        module, ones(4), num_training=2, update_attr=False
    )
    assert vars(module)["dtypes"] == [mx.bfloat16] * 2 and module.w.dtype == mx.float32
    finder = Tuner(quiet_trainer(tmp_path, limit_train_batches=2)).lr_find(
        LossIsTheBatch(),
        [mx.full((2,), float(v)) for v in range(1, 7)],
        num_training=4,
        early_stop_threshold=None,
        update_attr=False,
    )
    assert finder.results["loss"] == pytest.approx(smoothed([1.0, 2.0, 1.0, 2.0]), rel=1e-6)


def test_the_sweep_prints_nothing_where_the_trainers_progress_bar_is_off(tmp_path, capsys):
    Tuner(quiet_trainer(tmp_path)).lr_find(Slope(), ones(), num_training=5, update_attr=False)
    assert capsys.readouterr() == ("", "")


def test_with_the_progress_bar_on_the_sweep_says_what_it_is_and_what_it_set(tmp_path, capsys):
    # Its lines read "Epoch 0: 8/8 batches ... Epoch 1: 2/8 batches, loss=..." as a fit's would, a fit that
    # did not happen, and nothing said which rate lr_find set (Lightning: "Learning rate set to ...").
    module = Slope(a=1.0)
    trainer = Trainer(default_root_dir=tmp_path, logger=False, enable_checkpointing=False, max_epochs=1)
    finder = Tuner(trainer).lr_find(module, ones(8), min_lr=1e-3, max_lr=1e3, num_training=30)
    err = capsys.readouterr().err
    assert err.splitlines()[0] == (
        "Tuner.lr_find: a sweep of 30 steps from learning rate 0.001 to 1000 (exponential), not a fit: "
        "its epochs are the sweep's"
    )
    last = err.splitlines()[-1]
    assert last.startswith("Tuner.lr_find: stopped early after ") and "where the loss diverged" in last
    assert last.endswith(f"; lr set to {finder.suggestion():.3g} (model.lr)")
    assert module.lr == finder.suggestion()


class CountsItsBatches(Slope):
    """Keeps a count of its training batches in its checkpoints (as a curriculum's stage would be)."""

    def on_train_batch_end(self, outputs, batch, batch_idx):
        vars(self)["count"] = vars(self).get("count", 0) + 1

    def on_save_checkpoint(self, checkpoint):
        checkpoint["count"] = vars(self).get("count", 0)

    def on_load_checkpoint(self, checkpoint):
        vars(self)["count"] = checkpoint["count"]


class CountsItsLoaders(audiotrain.DataModule):
    def __init__(self):
        super().__init__()
        self.served = 0

    def train_dataloader(self):
        self.served += 1
        return ones()

    def state_dict(self):
        return {"served": self.served}

    def load_state_dict(self, state):
        self.served = state["served"]


def test_the_state_the_module_and_datamodule_keep_in_checkpoints_is_put_back_after_the_sweep(tmp_path):
    module, data = CountsItsBatches(), CountsItsLoaders()
    Tuner(quiet_trainer(tmp_path)).lr_find(module, datamodule=data, num_training=5, update_attr=False)
    assert vars(module)["count"] == 0 and data.served == 0


class SwitchesDropoutOff(TinyClassifier):
    """A hook sets a layer to eval mode during fit (as a user stops dropout after a warm-up)."""

    def __init__(self):
        super().__init__(dropout=0.5)

    def on_train_start(self):
        self.drop.eval()


@pytest.mark.filterwarnings("ignore:.*in eval mode at the start of training")  # (fc2: the user chose it)
def test_a_layer_a_hook_sets_to_eval_in_the_sweep_is_training_again_after_it(tmp_path):
    module = SwitchesDropoutOff()
    module.fc2.eval()  # (the user's own choice stays too)
    before = {name: m.training for name, m in module.named_modules()}
    Tuner(quiet_trainer(tmp_path)).lr_find(module, make_batches(32), num_training=3, update_attr=False)
    assert {name: m.training for name, m in module.named_modules()} == before
    assert module.drop.training and not module.fc2.training


# ------------------------------------------------------------------ found by a user sweep
class UnfreezesAtEpoch1(TinyClassifier):
    """fc1 frozen at first, unfrozen by a hook from epoch 1 on (a sweep of 10 steps reaches epoch 2)."""

    def __init__(self):
        super().__init__()
        self.fc1.freeze()

    def on_train_epoch_start(self):
        if self.trainer.current_epoch == 1:
            self.fc1.unfreeze()


def test_a_layer_the_sweep_unfreezes_is_frozen_again_and_the_next_fit_is_a_fresh_one(tmp_path):
    def trainer(root):
        return quiet_trainer(root, max_epochs=3, seed=0, enable_model_summary=False, num_sanity_val_steps=0)

    batches = make_batches(64, 16)  # 4 batches an epoch
    mx.random.seed(0)
    module = UnfreezesAtEpoch1()
    assert trainable_names(module) == {"fc2.weight", "fc2.bias"}
    Tuner(trainer(tmp_path / "a")).lr_find(
        module, batches, num_training=10, update_attr=False, early_stop_threshold=None
    )
    assert trainable_names(module) == {"fc2.weight", "fc2.bias"}  # (the sweep's epoch 1 unfroze fc1)
    trainer(tmp_path / "b").fit(module, batches)
    mx.random.seed(0)
    alone = UnfreezesAtEpoch1()
    trainer(tmp_path / "c").fit(alone, batches)
    after, expected = weights(module), weights(alone)
    assert all(np.array_equal(after[k], expected[k]) for k in expected)


class SeesBatches(TinyClassifier):
    """Records the number in the last feature of each batch's first sample: the sample's index."""

    def on_train_batch_start(self, batch, batch_idx):
        vars(self).setdefault("seen", []).append(int(np.array(batch[0][0, -1])))


def test_under_overfit_batches_the_sweep_runs_over_the_same_unshuffled_first_batches(tmp_path):
    x, y = make_data(64)
    x[:, -1] = np.arange(64)
    loader = DataLoader(list(zip(x, y, strict=True)), batch_size=8, shuffle=True, seed=1)
    trainer = quiet_trainer(tmp_path, overfit_batches=2, max_epochs=3)
    module = SeesBatches()
    with pytest.warns(UserWarning, match="overfit_batches.*shuffle=True"):
        finder = Tuner(trainer).lr_find(
            module, loader, num_training=8, update_attr=False, early_stop_threshold=None
        )
    assert len(finder.results["lr"]) == 8
    assert vars(module)["seen"] == [0, 8] * 4  # batches 0 and 1 of the dataset's order, every epoch
    assert loader.shuffle is True and loader.state_dict()["batches_yielded"] == 0  # put back
    vars(module)["seen"].clear()
    with pytest.warns(UserWarning, match="overfit_batches.*shuffle=True"):
        trainer.fit(module, loader)
    assert vars(module)["seen"] == [0, 8] * 3


def test_under_overfit_batches_the_sweep_does_not_validate(tmp_path):
    class ValidatesToo(LossIsTheBatch):
        def val_dataloader(self):
            return [mx.ones((2,))]

        def validation_step(self, batch, batch_idx):
            vars(self)["validated"] = True
            return mx.mean(batch)

    module = ValidatesToo()
    Tuner(quiet_trainer(tmp_path, overfit_batches=2)).lr_find(
        module, ones(4), num_training=4, early_stop_threshold=None, update_attr=False
    )
    assert "validated" not in vars(module)


def test_suggestion_says_why_it_has_too_few_points(tmp_path):
    tuner = Tuner(quiet_trainer(tmp_path))
    with pytest.warns(UserWarning, match="yields no batches"):
        empty = tuner.lr_find(TinyClassifier(), [], num_training=10, update_attr=False)
    with pytest.warns(
        UserWarning, match="the sweep ran no steps: its training loader yielded no batches"
    ) as seen:
        assert empty.suggestion() is None
    assert "diverged" not in str(seen[0].message)

    short = tuner.lr_find(
        TinyClassifier(), make_batches(64), num_training=10, update_attr=False, early_stop_threshold=None
    )
    with pytest.warns(
        UserWarning, match=r"num_training=10 leaves 0 point\(s\) after skip_begin=10 .* and skip_end=1"
    ) as seen:
        assert short.suggestion() is None
    assert "diverged" not in str(seen[0].message) and "stopped" not in str(seen[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert short.suggestion(skip_begin=0) is not None

    # SGD on a/2 w² diverges above lr = 2: from min_lr=3 it stops within a few steps.
    diverged = tuner.lr_find(Slope(), ones(), min_lr=3.0, max_lr=1e3, num_training=40, update_attr=False)
    steps = len(diverged.results["lr"])
    assert steps < 12
    with pytest.warns(
        UserWarning,
        match=rf"the sweep stopped early at step {steps} of num_training=40 .*where the loss diverged",
    ):
        assert diverged.suggestion() is None


def test_numpy_integers_are_taken_where_an_int_is_expected(tmp_path):
    finder = Tuner(quiet_trainer(tmp_path)).lr_find(
        Slope(),
        ones(),
        min_lr=np.float32(1e-3),
        max_lr=np.float64(1e-1),
        num_training=np.int64(5),
        early_stop_threshold=np.float32(4.0),
        update_attr=False,
    )
    assert len(finder.results["lr"]) == 5 and finder.num_training == 5 and type(finder.num_training) is int
    assert finder.suggestion(skip_begin=np.int64(0), skip_end=np.int32(1)) is not None
    with pytest.raises(ValueError, match=r"skip_begin=True\): expected an int >= 0"):
        finder.suggestion(skip_begin=True)


class CtrlCAtStep3(Slope):
    def on_train_batch_end(self, outputs, batch, batch_idx):
        super().on_train_batch_end(outputs, batch, batch_idx)
        if batch_idx == 2:
            import signal

            signal.raise_signal(signal.SIGINT)


def test_a_sweep_a_ctrl_c_cut_short_leaves_the_rate_and_reaches_the_caller(tmp_path, capsys):
    """A Ctrl-C (or SIGTERM) in the sweep was swallowed: lr_find returned, set the rate from the few steps
    at the sweep's low end (1e-7 and the like) without a word, and the script went on to train a whole fit
    at it. The rate stays the module's, and the stop goes on to the caller as an aborted fit's does (status
    130 for a script: `SaveAborted`, a KeyboardInterrupt)."""
    from audiotrain import SaveAborted

    module = CtrlCAtStep3(lr=0.1)
    with pytest.raises(SaveAborted) as stopped:
        Tuner(quiet_trainer(tmp_path)).lr_find(module, ones(40), num_training=30)
    assert stopped.value.code == 130 and isinstance(stopped.value, KeyboardInterrupt)
    assert module.lr == 0.1 and float(module.w.item()) == 1.0  # the rate and the weights as they were
    err = capsys.readouterr().err
    assert (
        "Tuner.lr_find: interrupted (Ctrl-C) after 3 of 30 steps of the sweep; the learning rate was left"
        in err
    )
    assert "no checkpoint saved" not in err  # (the sweep's own Trainer's line named a setting never chosen)


def test_a_warning_filter_set_during_the_sweep_outlives_it(tmp_path):
    """lr_find hid its sweep's skipped-update warning with `warnings.catch_warnings`, which puts back the
    whole process's filter list it found: a filter the module's hooks (a library they import) or another
    thread of the process added during the sweep was dropped as it ended."""
    import warnings

    class SetsAFilter(Slope):
        def on_train_start(self):
            warnings.filterwarnings("ignore", message="a filter set during the sweep")

    try:
        Tuner(quiet_trainer(tmp_path)).lr_find(
            SetsAFilter(a=1.0), ones(4), num_training=3, early_stop_threshold=None, update_attr=False
        )
        assert any(f[1] and f[1].pattern == "a filter set during the sweep" for f in warnings.filters)
    finally:
        warnings.filters[:] = [
            f for f in warnings.filters if not (f[1] and "during the sweep" in f[1].pattern)
        ]


# ------------------------------------------------------------------ LearningRateFinder, the callback
def _linear_job():
    """The job the comparison with Lightning 2.6.6 ran (torch.nn.Linear there): Linear(8, 1), MSE, SGD at
    `lr`, 128 fixed samples in 8 unshuffled batches of 16, fixed starting weights."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, 8)).astype(np.float32)
    w = rng.standard_normal((1, 8)).astype(np.float32)
    y = (x @ w.T + 0.1 * rng.standard_normal((128, 1))).astype(np.float32)
    start = (0.1 * np.random.default_rng(1).standard_normal((1, 8))).astype(np.float32)

    class Linear(TrainModule):
        def __init__(self, keep_optimizer=False, with_rate=True):
            super().__init__()
            if with_rate:
                self.lr = 0.01
            self.lin = nn.Linear(8, 1)
            self.lin.weight, self.lin.bias = mx.array(start), mx.zeros((1,))
            # (an optimizer made once and returned by every configure_optimizers: the sweep's too)
            object.__setattr__(self, "kept", optim.SGD(learning_rate=0.01) if keep_optimizer else None)
            object.__setattr__(self, "fit_rates", [])

        def training_step(self, batch, batch_idx):
            return mx.mean((self.lin(batch[0]) - batch[1]) ** 2)

        def configure_optimizers(self):
            return self.kept or optim.SGD(learning_rate=getattr(self, "lr", 0.01))

        def on_train_batch_start(self, batch, batch_idx):
            self.fit_rates.append(float(self.trainer.optimizer.learning_rate.item()))

    return Linear, lambda: DataLoader([(x[i], y[i]) for i in range(128)], batch_size=16, shuffle=False)


def _lightnings_rates(min_lr, max_lr, n, mode):
    """Lightning's spacing (README: ours differs on purpose), so that its numbers apply here."""
    return [min_lr] + [min_lr + (k + 1) / n * (max_lr - min_lr) for k in range(1, n)]


def test_learning_rate_finder_sweeps_at_fit_start_and_the_fit_trains_at_the_suggestion(tmp_path, monkeypatch):
    from audiotrain.callbacks import LearningRateFinder
    from audiotrain.train import tuner

    monkeypatch.setattr(tuner, "sweep_rates", _lightnings_rates)
    Linear, loader = _linear_job()
    model = Linear()
    finder = LearningRateFinder(min_lr=1e-4, max_lr=0.1, num_training_steps=20, mode="linear")
    trainer = quiet_trainer(tmp_path, max_epochs=4, callbacks=[finder])
    trainer.fit(model, loader())
    # Lightning 2.6.6's LearningRateFinder on the same job (torch.nn.Linear, SGD): 20 points, suggestion
    # 0.075025 written to model.lr and to the optimizer's param_groups, then 32 steps at it from the
    # starting weights, to these weights.
    assert len(finder.optimal_lr.results["lr"]) == len(finder.optimal_lr.results["loss"]) == 20
    assert finder.optimal_lr.results["lr"][:3] == pytest.approx([0.0001, 0.01009, 0.015085])
    assert finder.optimal_lr.suggestion() == pytest.approx(0.075025)
    assert model.lr == pytest.approx(0.075025)
    assert model.fit_rates[20:] == pytest.approx([0.075025] * 32)  # (after the sweep's 20 batches)
    assert (trainer.global_step, trainer.current_epoch) == (32, 4)
    lightning = [
        0.463319,
        1.576723,
        -0.766868,
        -0.081585,
        1.164351,
        -1.478799,
        0.334645,
        -0.337489,
        -0.009437,
    ]
    weights = [*np.array(model.lin.weight).ravel(), *np.array(model.lin.bias)]
    np.testing.assert_allclose(weights, lightning, rtol=1e-4, atol=1e-6)


def test_learning_rate_finder_without_a_rate_attribute_is_refused_before_the_sweep(tmp_path):
    from audiotrain.callbacks import LearningRateFinder

    Linear, loader = _linear_job()
    model = Linear(with_rate=False)
    trainer = quiet_trainer(tmp_path, max_epochs=1, callbacks=[LearningRateFinder(num_training_steps=20)])
    # Lightning 2.6.6 raises AttributeError "When using the learning rate finder, either `model` or
    # `model.hparams` should have one of these fields: ('lr', 'learning_rate'). If your model has a
    # different name for the learning rate, set it with `.lr_find(attr_name=...)`." before it sweeps; here
    # the fix names the callback's own argument and result.
    with pytest.raises(AttributeError) as caught:
        trainer.fit(model, loader())
    message = str(caught.value)
    assert "found no learning-rate attribute 'lr' or 'learning_rate' in model or model.hparams" in message
    assert "LearningRateFinder(attr_name=...)" in message and "optimal_lr.suggestion()" in message
    assert model.fit_rates == [] and trainer.global_step == 0


def test_learning_rate_finder_is_imported_from_audiotrain_train_as_every_other_callback():
    """`from audiotrain.train import LearningRateMonitor, LearningRateFinder` raised "ImportError: cannot
    import name 'LearningRateFinder' from 'audiotrain.train'", where every other callback imports from
    there too."""
    from audiotrain.callbacks import LearningRateFinder
    from audiotrain.train import LearningRateFinder as from_train

    assert from_train is LearningRateFinder


def test_learning_rate_finder_too_short_for_a_suggestion_names_its_own_argument_and_the_users_line(tmp_path):
    """LearningRateFinder(num_training_steps=10): the sweep's 10 points leave none after suggestion's
    skip_begin=10. The warning said "num_training=10 leaves 0 point(s) ...; raise num_training", an
    argument the callback does not have, and pointed at audiotrain/train/callbacks/lr_finder.py. It names
    the callback's num_training_steps, at the line of the user's fit; the fit trains at the rate it had."""
    from audiotrain.callbacks import LearningRateFinder

    Linear, loader = _linear_job()
    model = Linear()
    trainer = quiet_trainer(tmp_path, max_epochs=1, callbacks=[LearningRateFinder(num_training_steps=10)])
    with pytest.warns(UserWarning, match="no learning rate suggested") as caught:
        trainer.fit(model, loader())
    (warned,) = [w for w in caught if "no learning rate suggested" in str(w.message)]
    assert "num_training_steps=10 leaves 0 point(s)" in str(warned.message)
    assert "raise num_training_steps," in str(warned.message)
    assert warned.filename == __file__
    assert model.lr == 0.01 and model.fit_rates[10:] == pytest.approx([0.01] * 8)


def test_learning_rate_finder_speaks_as_itself_and_does_not_warn_of_a_next_fit(tmp_path, capsys):
    """With the progress bar on, LearningRateFinder's fit printed "Tuner.lr_find: a sweep of 20 steps ..."
    and "Tuner.lr_find: ran 20 of 20 steps; lr set to ...", a call the user never made; and with a module
    whose configure_optimizers does not read self.lr it warned "Tuner.lr_find: lr is set to the suggested
    ..., the next fit would not use the suggestion", while the callback sets this fit's optimizer to it."""
    from audiotrain.callbacks import LearningRateFinder

    Linear, loader = _linear_job()

    class FixedRate(Linear):
        def configure_optimizers(self):
            return optim.SGD(learning_rate=0.05)

    model = FixedRate()
    trainer = Trainer(
        default_root_dir=tmp_path,
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=[LearningRateFinder(num_training_steps=20)],
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(model, loader())
    assert not [w for w in caught if "configure_optimizers gave" in str(w.message)]
    assert model.fit_rates[20:] == pytest.approx([model.lr] * 8) and model.lr != 0.01
    printed = capsys.readouterr().err
    assert "LearningRateFinder: a sweep of 20 steps" in printed
    assert f"LearningRateFinder: ran 20 of 20 steps; lr set to {model.lr:.3g} (model.lr)" in printed
    assert "Tuner.lr_find" not in printed


def test_learning_rate_finder_at_chosen_epochs_and_in_a_resumed_fit(tmp_path):
    from audiotrain.callbacks import LearningRateFinder

    class AtMilestones(LearningRateFinder):  # Lightning's docs example, for fine-tuning milestones
        def on_fit_start(self, *args, **kwargs):
            return

        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch in (2,) or trainer.current_epoch == 0:
                self.lr_find(trainer, pl_module)
                sweeps.append(
                    (trainer.current_epoch, trainer.global_step, len(self.optimal_lr.results["lr"]))
                )

    Linear, loader = _linear_job()
    sweeps: list = []
    model = Linear()
    finder = AtMilestones(min_lr=1e-4, max_lr=0.1, num_training_steps=20, mode="linear")
    trainer = quiet_trainer(tmp_path, max_epochs=4, callbacks=[finder])
    trainer.fit(model, loader())
    # Each sweep runs all its steps and the fit goes on where it was (Lightning 2.6.6's second sweep, inside
    # its running fit loop, records one point and suggests nothing: README).
    assert sweeps == [(0, 0, 20), (2, 16, 20)]
    assert (trainer.global_step, trainer.current_epoch) == (32, 4)
    assert model.fit_rates[-16:] == pytest.approx([model.lr] * 16)

    # A resumed fit sweeps again (as Lightning 2.6.6's does) and goes on at the checkpoint's step (where
    # Lightning's starts again at epoch 0, step 0: README).
    first = quiet_trainer(
        tmp_path / "a", max_epochs=3, callbacks=[LearningRateFinder(1e-4, 0.1, 20, "linear")]
    )
    first.fit(Linear(), loader())
    first.save_checkpoint(tmp_path / "ckpt")
    finder = LearningRateFinder(min_lr=1e-4, max_lr=0.1, num_training_steps=20, mode="linear")
    resumed, model = quiet_trainer(tmp_path / "b", max_epochs=5, callbacks=[finder]), Linear()
    resumed.fit(model, loader(), ckpt_path=tmp_path / "ckpt")
    assert len(finder.optimal_lr.results["lr"]) == 20
    assert model.fit_rates[20:] == pytest.approx([model.lr] * 16)
    assert resumed.global_step == 40


def test_learning_rate_finder_with_an_optimizer_the_module_keeps(tmp_path):
    from audiotrain.callbacks import LearningRateFinder

    Linear, loader = _linear_job()
    model = Linear(keep_optimizer=True)
    finder = LearningRateFinder(min_lr=1e-4, max_lr=0.1, num_training_steps=20, mode="linear")
    # (the fit's first step read traced placeholders, "RuntimeError: [eval] Attempting to eval an array
    # without a primitive": the sweep had replaced the optimizer state dict the fit's step was built on)
    quiet_trainer(tmp_path / "a", max_epochs=3, callbacks=[finder]).fit(model, loader())
    plain = Linear()
    plain.lr = finder.optimal_lr.suggestion()
    quiet_trainer(tmp_path / "b", max_epochs=3).fit(plain, loader())
    # The same 24 steps at the suggestion from the same start, as Lightning 2.6.6's restore gives.
    assert model.fit_rates[20:] == pytest.approx(plain.fit_rates) == [plain.lr] * 24
    np.testing.assert_allclose(np.array(model.lin.weight), np.array(plain.lin.weight), rtol=1e-6)


def test_learning_rate_finder_under_fast_dev_run_says_it_skipped_naming_itself_at_the_users_line(tmp_path):
    from audiotrain.callbacks import LearningRateFinder

    Linear, loader = _linear_job()
    model = Linear()
    finder = LearningRateFinder(num_training_steps=20)
    trainer = quiet_trainer(tmp_path, fast_dev_run=True, callbacks=[finder])
    # (it said "Tuner.lr_find: skipped, ...", a call the user never wrote, at audiotrain's callbacks file)
    with pytest.warns(UserWarning, match=r"LearningRateFinder: the sweep is skipped.*fast_dev_run") as said:
        trainer.fit(model, loader())
    assert [w.filename for w in said if "sweep is skipped" in str(w.message)] == [__file__]
    assert finder.optimal_lr is None and model.fit_rates == [pytest.approx(0.01)]


def test_learning_rate_finder_with_a_scheduled_rate_warns_at_the_users_line(tmp_path):
    from audiotrain.callbacks import LearningRateFinder

    Linear, loader = _linear_job()

    class Scheduled(Linear):
        def configure_optimizers(self):
            return optim.SGD(learning_rate=optim.linear_schedule(self.lr, 0.0, 100))

    model = Scheduled()
    finder = LearningRateFinder(min_lr=1e-4, max_lr=0.1, num_training_steps=20, mode="linear")
    # (it was said at audiotrain/train/callbacks/lr_finder.py, the callback's own line)
    with pytest.warns(
        UserWarning, match=r"LearningRateFinder: lr is set to the suggested .* a schedule"
    ) as said:
        quiet_trainer(tmp_path, max_epochs=1, callbacks=[finder]).fit(model, loader())
    assert [w.filename for w in said if "a schedule" in str(w.message)] == [__file__]
    assert model.lr == pytest.approx(finder.optimal_lr.suggestion())


class OnPlateau(TinyClassifier):
    """Adam with Lightning's ReduceLROnPlateau lr_scheduler on `val_loss` (Lightning's issue #20355)."""

    def configure_optimizers(self):
        plateau = {"scheduler": ReduceLROnPlateau(factor=0.5, patience=2), "monitor": "val_loss"}
        return {"optimizer": optim.Adam(learning_rate=self.lr), "lr_scheduler": plateau}

    def validation_step(self, batch, batch_idx):
        loss, _ = self.compute_loss(batch)
        self.log("val_loss", loss)


def test_a_reduce_on_plateau_lr_scheduler_sits_out_the_sweep(tmp_path):
    """The ReduceLROnPlateau that configure_optimizers returned joined the sweep's callbacks, and failed its
    first epoch's end: "monitored metric 'val_loss' was not logged" (the sweep does not validate). Lightning
    2.6.6 swaps the fit's lr schedulers for its sweep's, so lr_find and a LearningRateFinder (with
    EarlyStopping on val_loss, its test for #20355) run to the end, and the fit's plateau works as before."""
    module = OnPlateau(lr=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (nor a warning that the sweep never validates val_loss)
        finder = Tuner(quiet_trainer(tmp_path)).lr_find(module, make_batches(), num_training=20)
    assert len(finder.results["lr"]) == 20 and module.lr == finder.suggestion()

    callbacks = [LearningRateFinder(num_training_steps=20, update_attr=False), EarlyStopping("val_loss")]
    trainer = quiet_trainer(tmp_path, max_epochs=3, callbacks=callbacks)
    trainer.fit(OnPlateau(), make_batches(), make_batches(32))
    assert trainer.current_epoch == 3 and callbacks[0].optimal_lr.results["lr"]
    assert isinstance(trainer._configured_plateau, ReduceLROnPlateau)  # (the fit's own still runs)


def test_lr_find_on_a_trainer_with_a_learning_rate_finder_is_refused(tmp_path):
    """Tuner.lr_find swept where the Trainer had a LearningRateFinder too, whose own sweep at the next fit's
    start then overwrote the rate found. Lightning 2.6.6 refuses it: "ValueError: Trainer is already
    configured with a `LearningRateFinder` callback.Please remove it if you want to use the Tuner."."""
    trainer = quiet_trainer(tmp_path, callbacks=[LearningRateFinder()])
    module = TinyClassifier(lr=0.01)
    with pytest.raises(ValueError, match=r"already has a LearningRateFinder among its callbacks"):
        Tuner(trainer).lr_find(module, make_batches(), num_training=20)
    assert module.lr == 0.01
