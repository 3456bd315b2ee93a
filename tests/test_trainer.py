"""Trainer flags and loops, from the user's side (one test per flag at least)."""

import inspect
import json
import os
import re
import site
import warnings

from audiotrain import OptimizerConfig, PossibleUserWarning, Trainer, TrainModule
from audiotrain.train.callbacks import Callback, GradientClipper
from audiotrain.train.trainer import SHORT_EPOCH_WARNING

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from mlx.utils import tree_flatten, tree_map, tree_unflatten
from reference import require
from tasks import RecordingLogger, TinyClassifier, make_batches, make_data, quiet_trainer, weights


def trainer(tmp_path, **kw):
    kw.setdefault("enable_progress_bar", False)
    kw.setdefault("compile", False)
    kw.setdefault("default_root_dir", tmp_path)
    kw.setdefault("enable_checkpointing", False)
    return Trainer(**kw)


def fit(tmp_path, module=None, batches=None, val=None, seed=0, **kw):
    mx.random.seed(seed)
    module = (
        module() if callable(module) and not isinstance(module, TrainModule) else (module or TinyClassifier())
    )
    t = trainer(tmp_path, **kw)
    t.fit(module, batches if batches is not None else make_batches(), val)
    return t, module


class Counter(Callback):
    def __init__(self):
        self.calls: dict[str, int] = {}

    def __getattribute__(self, name):
        if name.startswith("on_"):
            calls = object.__getattribute__(self, "calls")

            def hook(*args, **kwargs):
                calls[name] = calls.get(name, 0) + 1

            return hook
        return object.__getattribute__(self, name)


def test_learns_and_history_columns(tmp_path):
    t, _ = fit(tmp_path, max_epochs=6, val=make_batches(48, seed=1))
    h = t.history
    assert h["epoch"] == list(range(6))
    assert h["step"] == [6 * (i + 1) for i in range(6)]
    assert h["train_loss"][-1] < h["train_loss"][0]
    assert h["val_accuracy"][-1] > 0.6
    assert all(x is not None for x in h["learning_rate"])
    assert h["time"] == sorted(h["time"])
    path = t.export_history(tmp_path / "h.json")
    assert json.loads(path.read_text())["val_loss"] == h["val_loss"]


def test_the_history_step_column_counts_optimizer_steps_under_accumulation(tmp_path):
    # 6 batches an epoch in windows of 2: 3 optimizer steps an epoch, as global_step counts them.
    t, _ = fit(tmp_path, max_epochs=2, accumulate_grad_batches=2)
    assert t.global_step == 6 and t.history["step"] == [3, 6]
    assert json.loads(t.export_history(tmp_path / "h.json").read_text())["step"] == [3, 6]


def test_max_steps_takes_precedence(tmp_path):
    t, _ = fit(tmp_path, max_epochs=10, max_steps=8)
    assert t.global_step == 8 and t.current_epoch == 1
    assert t.history["epoch"] == [0, 1]  # the partial epoch is recorded, and stays open for a resume


def test_max_epochs_or_steps_required_by_fit(tmp_path):
    with pytest.raises(ValueError, match=r"Trainer.fit: set max_epochs, max_steps or max_time"):
        trainer(tmp_path / "run").fit(TinyClassifier(), make_batches())
    assert not (tmp_path / "run").exists()  # refused before anything was written


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_epochs": 0}, "max_epochs"),
        ({"max_epochs": 1, "val_check_interval": 1.5}, "val_check_interval"),
        ({"max_epochs": 1, "gradient_clip_val": -1}, "gradient_clip_val"),
        ({"max_epochs": 1, "gradient_clip_algorithm": "l2"}, "gradient_clip_algorithm"),
        ({"max_epochs": 1, "precision": "fp8"}, "precision"),
        ({"max_epochs": 1, "accumulate_grad_batches": 0}, "accumulate_grad_batches"),
        ({"max_epochs": 1, "limit_train_batches": 2.5}, "limit_train_batches"),
        ({"max_epochs": 1, "log_every_n_steps": -1}, "log_every_n_steps"),
        ({"max_epochs": 1, "fast_dev_run": -1}, "fast_dev_run"),
        ({"max_epochs": 1, "seed": "x"}, "seed"),
    ],
)
def test_bad_flags_name_the_flag(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Trainer(**kwargs)


def test_bad_callback_and_logger_types():
    with pytest.raises(TypeError, match="Callback"):
        Trainer(max_epochs=1, callbacks=[object()])
    with pytest.raises(TypeError, match="log_metrics"):
        Trainer(max_epochs=1, logger=object())


def test_val_check_interval_float_and_int(tmp_path):
    counter = Counter()
    fit(tmp_path, max_epochs=2, val=make_batches(32), val_check_interval=0.5, callbacks=[counter])
    assert counter.calls["on_validation_start"] == 5  # the sanity check, then mid-epoch + epoch end, twice
    counter = Counter()
    fit(tmp_path, max_epochs=2, val=make_batches(32), val_check_interval=4, callbacks=[counter])
    assert counter.calls["on_validation_start"] == 3  # the sanity check, then after batch 4 of each epoch
    counter = Counter()
    fit(
        tmp_path,
        max_epochs=2,
        val=make_batches(32),
        val_check_interval=4,
        check_val_every_n_epoch=None,
        callbacks=[counter],
    )
    assert counter.calls["on_validation_start"] == 4  # the sanity check, then after batches 4, 8, 12


def test_limit_batches_and_fast_dev_run(tmp_path):
    t, _ = fit(tmp_path, max_epochs=2, limit_train_batches=2, limit_val_batches=0.5, val=make_batches(64))
    assert t.global_step == 4 and t.num_val_batches == 2
    logger = RecordingLogger()
    t, _ = fit(
        tmp_path,
        max_epochs=5,
        fast_dev_run=True,
        val=make_batches(64),
        logger=logger,
        enable_checkpointing=True,
    )
    assert t.global_step == 1 and t.num_val_batches == 1
    assert logger.metrics == [] and not (tmp_path / "checkpoints").exists()


def test_log_every_n_steps_zero_logs_no_step_but_the_epoch_and_validation_values(tmp_path):
    # Lightning's log_every_n_steps=0 (_LoggerConnector.should_update_logs): no per-step row, epoch means
    # and validation values still written.
    logger = RecordingLogger()
    t, _ = fit(tmp_path, max_epochs=2, log_every_n_steps=0, val=make_batches(32), logger=logger)
    assert t.log_every_n_steps == 0 and t.global_step == 12
    assert [step for step, _ in logger.metrics if "train_loss" in _] == []  # (a step's interval mean)
    epoch_rows = [step for step, m in logger.metrics if "train_loss_epoch" in m]
    val_rows = [step for step, m in logger.metrics if "val_loss" in m]
    assert epoch_rows == [6, 12] and val_rows == [6, 12]


def test_fast_dev_run_runs_its_batches_whatever_max_steps_says(tmp_path):
    # As Lightning's fast_dev_run=n: n training batches, overriding max_steps and max_epochs.
    t, _ = fit(tmp_path, max_epochs=5, max_steps=1, fast_dev_run=3)
    assert t.global_step == 3 and t.current_epoch == 1


def test_the_limit_properties_show_each_stages_own_limit():
    t = Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=0.5, limit_test_batches=3)
    assert (t.limit_train_batches, t.limit_val_batches, t.limit_test_batches) == (2, 0.5, 3)
    assert t.limit_predict_batches == 1.0  # (none given: every batch, as Lightning shows it)


def test_limit_train_batches_zero_trains_nothing_and_says_so(tmp_path):
    with pytest.warns(UserWarning, match="the training loader yields no batches"):
        t, _ = fit(tmp_path, max_epochs=2, limit_train_batches=0)
    assert t.global_step == 0 and t.current_epoch == 0


def test_a_dataset_smaller_than_a_batch_with_drop_last_is_named_as_why_nothing_trains(tmp_path):
    """One sample in batches of 4 with drop_last=True trains nothing and validates nothing; the warnings said
    "limit or empty loader" (the loader is neither) and nothing at all, where drop_last is the reason."""
    from audiotrain import DataLoader

    x, y = make_data(1)
    one = [(x[0], y[0])]
    dropped = "its dataset has 1 sample, fewer than a batch of 4, and drop_last=True drops them"
    with pytest.warns(UserWarning, match=f"the training loader yields no batches: {dropped}"):
        t, _ = fit(tmp_path, batches=DataLoader(one, batch_size=4, drop_last=True), max_epochs=1)
    assert t.global_step == 0
    with pytest.warns(UserWarning) as caught:
        fit(tmp_path, batches=make_batches(), val=DataLoader(one, batch_size=4, drop_last=True), max_epochs=1)
    said = [str(w.message) for w in caught if "val loader yielded no batches" in str(w.message)]
    assert said and all(message.endswith(dropped) for message in said), said


def test_predict_over_a_loader_that_drops_its_only_batch_says_so(tmp_path):
    """`predict` on one sample in batches of 4 with drop_last=True (a training loader reused) returned [] with
    no word, where validate and test warn that their loader yielded no batches."""
    from audiotrain import DataLoader

    x, y = make_data(1)
    t, module = fit(tmp_path, max_epochs=1)
    dropped = "its dataset has 1 sample, fewer than a batch of 4, and drop_last=True drops them"
    with pytest.warns(UserWarning, match=f"the predict loader yielded no batches: {dropped}"):
        assert t.predict(module, DataLoader([(x[0], y[0])], batch_size=4, drop_last=True)) == []


def test_log_every_n_steps_and_loggers_list(tmp_path):
    a, b = RecordingLogger(), RecordingLogger()
    fit(tmp_path, max_epochs=2, log_every_n_steps=3, logger=[a, b])
    steps = [s for s, m in a.metrics if "train_loss" in m and "epoch" not in m]
    assert steps == [3, 6, 9, 12]
    assert a.metrics == b.metrics and a.status == "success" and a.hparams
    assert "learning_rate" in a.keys()
    assert "skipped_steps" not in a.keys()  # no update was skipped: no series of zeros
    assert "grad_norm" not in a.keys()  # only with track_grad_norm=True or norm clipping


def test_an_epoch_of_exactly_log_every_n_steps_batches_is_not_warned_as_short(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(tmp_path, max_epochs=1, log_every_n_steps=6, logger=RecordingLogger())  # 6 batches an epoch
    assert not [w for w in caught if "fewer than the logging interval" in str(w.message)]


def test_each_metric_is_logged_once_per_step_and_epoch_means_carry_a_suffix(tmp_path):
    # 6 batches per epoch, interval 4: the epoch's last step logs the interval mean of its last 2
    # batches as train_loss and the epoch mean as train_loss_epoch (they used to share one name).
    logger = RecordingLogger()
    t, _ = fit(tmp_path, max_epochs=2, log_every_n_steps=4, logger=logger)
    seen = set()
    for step, metrics in logger.metrics:
        for key in metrics:
            assert (step, key) not in seen, f"{key} logged twice at step {step}"
            seen.add((step, key))
    epoch_rows = [m for _, m in logger.metrics if "epoch" in m]
    assert [m["train_loss_epoch"] for m in epoch_rows] == pytest.approx(t.history["train_loss"])
    assert "train_accuracy_epoch" in epoch_rows[0]


def test_seed_makes_runs_repeatable(tmp_path):
    runs = []
    for seed in (7, 7, 8):
        mx.random.seed(0)
        module = TinyClassifier(dropout=0.5)
        trainer(tmp_path, max_epochs=2, seed=seed).fit(module, make_batches())
        runs.append(weights(module))
    assert all(np.array_equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert any(not np.array_equal(runs[0][k], runs[2][k]) for k in runs[0])


def test_compile_gives_the_same_numbers(tmp_path):
    results = []
    for compile_ in (False, True):
        t, module = fit(
            tmp_path,
            module=lambda: TinyClassifier(dropout=0.3),
            max_epochs=2,
            compile=compile_,
            seed=3,
            gradient_clip_val=0.5,
            accumulate_grad_batches=2,
            val=make_batches(32),
        )
        results.append((weights(module), t.history))
    (w0, h0), (w1, h1) = results
    for k in w0:
        np.testing.assert_allclose(w0[k], w1[k], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(h0["val_loss"], h1["val_loss"], rtol=1e-6)


def test_no_retrace_across_epochs_with_short_last_batch(tmp_path):
    batches = make_batches(90, 16)  # 5 full batches + one of 10
    t, _ = fit(tmp_path, batches=batches, max_epochs=4, compile=True, val=make_batches(40, 16))
    # one trace per input shape, in the first epoch only
    assert t._train_step.traces == 2
    assert t.evaluation.steps["val"].traces == 2


def test_accumulation_equals_large_batch(tmp_path):
    x = make_batches(64, 32)
    small = make_batches(64, 16)
    mx.random.seed(0)
    init = TinyClassifier(lr=0.05)
    start = weights(init)
    outs = []
    for batches, accum in ((x, 1), (small, 2)):
        module = TinyClassifier(lr=0.05)
        module.update(tree_unflatten([(k, mx.array(v)) for k, v in start.items()]))
        t = trainer(tmp_path, max_epochs=2, accumulate_grad_batches=accum)
        t.fit(module, batches)
        outs.append((weights(module), t.global_step))
    assert outs[0][1] == outs[1][1] == 4
    for k in outs[0][0]:
        np.testing.assert_allclose(outs[0][0][k], outs[1][0][k], rtol=1e-4, atol=1e-6)


class SGDTask(TinyClassifier):
    def configure_optimizers(self):
        return OptimizerConfig(optimizer=optim.SGD(learning_rate=1.0))


@pytest.mark.parametrize("algorithm", ["norm", "value"])
def test_gradient_clipping_matches_manual_clip(tmp_path, algorithm):
    batches = make_batches(16, 16)
    mx.random.seed(0)
    module = SGDTask()
    before = module.trainable_parameters()
    grads = nn.value_and_grad(module, lambda b: module.compute_loss(b)[0])(batches[0])[1]
    if algorithm == "norm":
        expected_grads, norm_before_clip = optim.clip_grad_norm(grads, 0.01)
    else:
        expected_grads = tree_map(lambda g: mx.clip(g, -0.001, 0.001), grads)
    expected = tree_map(lambda p, g: p - g, before, expected_grads)
    logger = RecordingLogger()
    trainer(
        tmp_path,
        max_steps=1,
        gradient_clip_val=0.01 if algorithm == "norm" else 0.001,
        gradient_clip_algorithm=algorithm,
        logger=logger,
        log_every_n_steps=1,
    ).fit(module, batches)
    got = module.trainable_parameters()
    for (k, a), (_, b) in zip(tree_flatten(got), tree_flatten(expected)):
        np.testing.assert_allclose(np.array(a), np.array(b), rtol=1e-5, atol=1e-7, err_msg=k)
    # Norm clipping computes the norm anyway, so it is logged (the norm before the clip), as with
    # track_grad_norm=True; value clipping computes none.
    logged = [m["grad_norm"] for _, m in logger.metrics if "grad_norm" in m]
    if algorithm == "norm":
        assert logged == [pytest.approx(float(norm_before_clip), rel=1e-5)] and logged[0] > 0.01
    else:
        assert logged == []


def test_gradient_clipper_callback_is_the_same_clip_applied_once(tmp_path):
    outs = []
    for kw in ({"gradient_clip_val": 0.1}, {"callbacks": [GradientClipper(max_norm=0.1)]}):
        _, module = fit(tmp_path, module=SGDTask, max_epochs=1, seed=1, **kw)
        outs.append(weights(module))
    for k in outs[0]:
        np.testing.assert_array_equal(outs[0][k], outs[1][k])
    with pytest.raises(ValueError, match="conflicts"):
        Trainer(max_epochs=1, gradient_clip_val=1.0, callbacks=[GradientClipper(max_norm=2.0)])


class NaNAfter(TinyClassifier):
    """Loss becomes NaN for batches whose first feature sum is marked (label 99 → NaN)."""

    def compute_loss(self, batch):
        x, y = batch
        loss, metrics = super().compute_loss((x, mx.minimum(y, 2)))
        poison = mx.any(y == 99)
        # NaN loss and NaN gradients (a where() alone would give finite, zero gradients)
        return loss * mx.where(poison, mx.array(float("nan")), mx.array(1.0)), metrics


class SetsTheClipAtEpoch1(Callback):
    """Sets the Trainer's clip at epoch 1's start, as a Lightning callback may (Lightning reads
    trainer.gradient_clip_val and gradient_clip_algorithm at every step), and measures each epoch's update."""

    def __init__(self, **clip):
        self.clip, self.moved = clip, []

    def on_train_epoch_start(self, trainer, module):
        if trainer.current_epoch == 1:
            for name, value in self.clip.items():
                setattr(trainer, name, value)
        self.before = weights(module)

    def on_train_epoch_end(self, trainer, module):
        after = weights(module)
        self.moved.append(float(np.sqrt(sum(((after[k] - self.before[k]) ** 2).sum() for k in after))))


@pytest.mark.parametrize("compile_", [False, True])
@pytest.mark.parametrize(
    "start, change",
    [
        ({}, {"gradient_clip_val": 1e-6}),
        ({"gradient_clip_val": 1.0}, {"gradient_clip_val": 1e-6}),
        (
            {"gradient_clip_val": 1e-6, "gradient_clip_algorithm": "value"},
            {"gradient_clip_algorithm": "norm"},
        ),
    ],
    ids=["on", "lowered", "algorithm"],
)
def test_a_clip_set_on_the_trainer_during_fit_clips_from_the_next_epoch(tmp_path, compile_, start, change):
    # The clip is part of the compiled step: set during fit, it was ignored for the rest of the fit (the
    # attribute said 1e-6, the updates were unclipped). Each of the 6 SGD updates (lr 1) of epoch 1 now
    # moves the weights by at most the clip's norm (a value clip of 1e-6 moves them by more).
    callback = SetsTheClipAtEpoch1(**change)
    fit(tmp_path, module=SGDTask, max_epochs=2, compile=compile_, callbacks=[callback], **start)
    assert callback.moved[1] <= 6 * 1e-6 * (1 + 1e-3) < callback.moved[0], callback.moved


def test_track_grad_norm_set_during_fit_logs_the_norm_from_the_next_epoch(tmp_path):
    # (Lightning 1's trainer.track_grad_norm, set by a callback: it was ignored for the rest of the fit.)
    logger = RecordingLogger()
    callback = SetsTheClipAtEpoch1(track_grad_norm=True)
    fit(tmp_path, module=SGDTask, max_epochs=2, callbacks=[callback], logger=logger, log_every_n_steps=1)
    steps = [step for step, m in logger.metrics if "grad_norm" in m]
    assert len(steps) == 6 and min(steps) >= 6, steps  # (6 steps an epoch: epoch 1's)


def test_a_bad_clip_set_during_fit_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match=r"trainer.gradient_clip_val.*set during fit.*expected a number > 0"):
        fit(tmp_path, module=SGDTask, max_epochs=2, callbacks=[SetsTheClipAtEpoch1(gradient_clip_val=-1.0)])


def poisoned(batches, which):
    out = []
    for i, (x, y) in enumerate(batches):
        out.append((x, mx.full(y.shape, 99, mx.int32) if i in which else y))
    return out


@pytest.mark.parametrize("compile_", [False, True])
def test_nonfinite_update_is_skipped_in_graph(tmp_path, compile_):
    batches = poisoned(make_batches(), {2})
    logger = RecordingLogger()
    t2, module2 = fit(
        tmp_path,
        module=NaNAfter(),
        batches=batches,
        max_epochs=1,
        compile=compile_,
        logger=logger,
        log_every_n_steps=1,
    )
    assert all(np.isfinite(v).all() for v in weights(module2).values())
    assert t2.callback_metrics["skipped_steps"] == 1
    assert int(t2.optimizer.state["step"]) == 5  # the skipped update did not advance the optimizer


class NaNGradient(TinyClassifier):
    """A finite loss whose gradient is NaN on marked batches (label 99): sqrt'(0) = inf times a
    zero derivative. Only the gradient check can catch these."""

    def compute_loss(self, batch):
        x, y = batch
        loss, metrics = super().compute_loss((x, mx.minimum(y, 2)))
        offset = mx.where(mx.any(y == 99), 0.0, 1.0)
        w = self.fc1.weight[0, 0]
        return loss + mx.sqrt(mx.abs(w - w) + offset) - mx.sqrt(offset), metrics


@pytest.mark.parametrize("track_grad_norm", [False, True])  # the plain-sum check and the norm check
def test_nonfinite_gradient_with_a_finite_loss_is_skipped(tmp_path, track_grad_norm):
    logger = RecordingLogger()
    t, module = fit(
        tmp_path,
        module=NaNGradient,
        batches=poisoned(make_batches(), {1, 3}),
        max_epochs=1,
        compile=True,
        logger=logger,
        log_every_n_steps=1,
        track_grad_norm=track_grad_norm,
    )
    assert all(np.isfinite(loss) for _, m in logger.metrics if (loss := m.get("train_loss")) is not None)
    assert all(np.isfinite(v).all() for v in weights(module).values())
    assert t.callback_metrics["skipped_steps"] == 2 and int(t.optimizer.state["step"]) == 4
    norms = [m["grad_norm"] for _, m in logger.metrics if "grad_norm" in m]
    assert (len(norms) == 6 and all(np.isfinite(norms))) if track_grad_norm else not norms


class NaNLossOnly(TinyClassifier):
    """A NaN loss on marked batches (label 99) through a stop_gradient term (a penalty or a metric folded into
    the loss): the gradients stay finite, so only the loss check can catch these."""

    def compute_loss(self, batch):
        x, y = batch
        loss, metrics = super().compute_loss((x, mx.minimum(y, 2)))
        return loss + mx.stop_gradient(mx.where(mx.any(y == 99), mx.array(float("nan")), 0.0)), metrics


def test_grad_norm_before_any_applied_update_is_nan_not_zero(tmp_path):
    # The logged grad_norm is the last applied gradient's. When the first steps are all skipped (NaN
    # gradients from the first batch on) none was applied: it logged 0.0, which reads as vanishing gradients
    # to a user hunting the NaN. Now NaN until an update goes through, then that update's norm.
    logger = RecordingLogger()
    with pytest.warns(UserWarning, match=r"skipped because their loss or gradients"):
        fit(
            tmp_path,
            module=NaNGradient,
            batches=poisoned(make_batches(), {0, 1}),
            max_epochs=1,
            logger=logger,
            log_every_n_steps=1,
            track_grad_norm=True,
        )
    norms = [m["grad_norm"] for _, m in logger.metrics if "grad_norm" in m]
    assert len(norms) == 6 and np.isnan(norms[:2]).all() and np.isfinite(norms[2:]).all(), norms


@pytest.mark.parametrize("track_grad_norm", [False, True])
def test_a_nonfinite_loss_with_finite_gradients_is_skipped(tmp_path, track_grad_norm):
    with pytest.warns(
        UserWarning, match=r"2 optimizer update\(s\) .* skipped because their loss or gradients"
    ):
        t, _ = fit(
            tmp_path,
            module=NaNLossOnly,
            batches=poisoned(make_batches(), {1, 3}),
            max_epochs=1,
            compile=True,
            track_grad_norm=track_grad_norm,
        )
    assert t.callback_metrics["skipped_steps"] == 2 and int(t.optimizer.state["step"]) == 4


def test_all_finite_sees_nan_inf_and_opposite_infinities():
    from audiotrain.train.step import all_finite

    inf, nan = float("inf"), float("nan")
    ok = {"a": mx.ones((3, 4)), "b": [mx.array([1e30, -1e30])]}
    assert bool(all_finite(ok)) and bool(all_finite({}))
    for bad in ([inf, -inf], [nan, 1.0], [1.0, inf]):
        assert not bool(all_finite({**ok, "c": mx.array(bad)})), bad
    assert not bool(all_finite({"m": mx.array([[1.0, -inf], [inf, 2.0]])}))  # rows cancel to NaN
    for shape, where in (((300, 200), (217, 3)), ((4, 3, 5, 7), (2, 1, 4, 6))):  # matrices, conv kernels
        for bad in (nan, inf, -inf):
            x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
            x[where] = bad
            assert not bool(all_finite({"w": mx.array(x)})), (shape, bad)
    big_half = {"w": mx.full((2, 4096), 30.0, mx.float16)}  # a row sums past float16's 65504
    assert bool(all_finite(big_half))


def test_global_norm_matches_numpy():
    from audiotrain.train.step import global_norm

    rng = np.random.default_rng(1)
    tree = {"a": rng.normal(size=(64, 33)), "b": [rng.normal(size=(7,)), rng.normal(size=(3, 4, 5))]}
    expected = np.sqrt(sum((v.astype(np.float64) ** 2).sum() for v in (tree["a"], *tree["b"])))
    got = global_norm(tree_map(lambda v: mx.array(v.astype(np.float32)), tree))
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_track_grad_norm_logs_the_norm_of_the_applied_gradient(tmp_path):
    batches = make_batches(16, 16)
    mx.random.seed(0)
    module = SGDTask()
    grads = nn.value_and_grad(module, lambda b: module.compute_loss(b)[0])(batches[0])[1]
    expected = float(optim.clip_grad_norm(grads, 1e9)[1])
    mx.random.seed(0)
    logger = RecordingLogger()
    trainer(tmp_path, max_steps=1, track_grad_norm=True, logger=logger, log_every_n_steps=1).fit(
        SGDTask(), batches
    )
    (norm,) = [m["grad_norm"] for _, m in logger.metrics if "grad_norm" in m]
    assert norm == pytest.approx(expected, rel=1e-5)


def test_too_many_nonfinite_steps_stop_with_a_clear_error(tmp_path):
    batches = poisoned(make_batches(), {1, 2, 3, 4})
    with pytest.raises(FloatingPointError, match="3 optimizer steps in a row"):
        fit(
            tmp_path,
            module=NaNAfter(),
            batches=batches,
            max_epochs=1,
            max_consecutive_nonfinite=3,
            log_every_n_steps=1,
        )


def test_a_nonfinite_streak_that_reached_the_limit_stops_training_though_the_next_step_is_finite(tmp_path):
    # The stop reads the longest streak since its last check: the finite step after the third NaN one has
    # already started the current streak again by the time the check runs.
    batches = poisoned(make_batches(160), {1, 2, 3})
    with pytest.raises(FloatingPointError, match="3 optimizer steps in a row"):
        fit(tmp_path, module=NaNAfter(), batches=batches, max_epochs=1, max_consecutive_nonfinite=3)


@pytest.mark.parametrize("compile_", [False, True])
def test_nonfinite_steps_that_are_not_in_a_row_do_not_stop_training(tmp_path, compile_):
    # 5 NaN batches of 10, never two in a row: a finite step starts the count again.
    batches = poisoned(make_batches(160), {1, 3, 5, 7, 9})
    with pytest.warns(UserWarning, match="skipped"):
        t, _ = fit(
            tmp_path,
            module=NaNAfter(),
            batches=batches,
            max_epochs=1,
            max_consecutive_nonfinite=3,
            compile=compile_,
        )
    assert t.global_step == 10


def test_debug_lazy_eval_names_the_failure(tmp_path):
    batches = poisoned(make_batches(), {1})
    with pytest.raises(FloatingPointError, match="epoch 0, batch 1"):
        fit(tmp_path, module=NaNAfter(), batches=batches, max_epochs=1, debug_lazy_eval=True, compile=True)


class NaNInTheBackward(TinyClassifier):
    """A finite loss whose gradient is NaN at batch 1: sqrt's derivative at 0 (inf) times 0."""

    def compute_loss(self, batch):
        x, y = batch
        loss, metrics = super().compute_loss((x, mx.minimum(y, 2)))
        zero = (self.fc1.weight - self.fc1.weight) * mx.any(y == 99)  # 0 either way; NaN gradient at 99
        return loss + mx.sum(mx.sqrt(zero + mx.where(mx.any(y == 99), 0.0, 1.0))), metrics


def test_debug_lazy_eval_stops_where_the_backward_alone_makes_a_nan(tmp_path):
    """Lightning's detect_anomaly, which the Trainer points to debug_lazy_eval for, raises at the first
    backward that makes a NaN (Lightning 2.6.6: "RuntimeError: Function 'SqrtBackward0' returned nan values
    in its 0th output"). The loss stayed finite and the guard skipped the update, so no
    parameter turned non-finite: debug_lazy_eval trained on, every such update skipped, and said so at the
    end only."""
    batches = poisoned(make_batches(), {1})
    with pytest.raises(FloatingPointError, match=r"gradients are not finite at epoch 0, batch 1 \(the loss"):
        fit(tmp_path, module=NaNInTheBackward(), batches=batches, max_epochs=1, debug_lazy_eval=True)
    t, _ = fit(
        tmp_path, module=NaNInTheBackward(), batches=make_batches(), max_epochs=1, debug_lazy_eval=True
    )
    assert t.global_step == len(make_batches())  # (finite gradients: no stop)


def test_debug_lazy_eval_without_the_guard_names_the_parameter_not_a_skipped_update(tmp_path):
    """With nonfinite_guard=False (and clipping, whose norm counts the streak) a NaN gradient's update goes
    through, yet debug_lazy_eval said "the gradients are not finite at epoch 0, batch 1 ...; the update was
    skipped". It names the parameter the update made non-finite, as before 6db97c76."""
    with pytest.raises(
        FloatingPointError, match=r"parameter 'fc\d\.\w+' became non-finite after epoch 0, batch 1"
    ):
        fit(
            tmp_path,
            module=NaNInTheBackward(),
            batches=poisoned(make_batches(), {1}),
            max_epochs=1,
            debug_lazy_eval=True,
            nonfinite_guard=False,
            gradient_clip_val=1.0,
        )


def test_debug_lazy_eval_does_not_stop_a_resumed_accumulating_run_on_the_streak_it_saved(tmp_path):
    """A run whose last update of epoch 0 was skipped (a NaN gradient, counted in the saved non-finite streak)
    resumed with debug_lazy_eval=True and accumulate_grad_batches=2 stopped at its first batch: "the gradients
    are not finite at epoch 1, batch 0", though that batch only accumulates (no update yet) and its gradients
    are finite. Only the step that ends a window makes an update to judge."""
    with pytest.warns(UserWarning, match="skipped"):
        fit(
            tmp_path,
            module=NaNInTheBackward(),
            batches=poisoned(make_batches(), {5}),
            max_epochs=1,
            accumulate_grad_batches=2,
            enable_checkpointing=True,
        )
    last = tmp_path / "checkpoints" / "last"
    t = trainer(
        tmp_path, max_epochs=2, accumulate_grad_batches=2, debug_lazy_eval=True, enable_checkpointing=True
    )
    t.fit(NaNInTheBackward(), make_batches(), ckpt_path=last)
    assert t.global_step == 6  # (3 updates an epoch, the skipped one counted as a step, as in Lightning)


def test_bf16_mixed_keeps_float32_master_weights_and_bf16_true_does_not(tmp_path):
    t, module = fit(tmp_path, max_epochs=3, precision="bf16-mixed", val=make_batches(32))
    assert all(v.dtype == np.float32 for v in weights(module).values())
    assert t.history["train_loss"][-1] < t.history["train_loss"][0]
    _, module = fit(tmp_path, max_epochs=1, precision="bf16-true")
    assert module.fc1.weight.dtype == mx.bfloat16


def test_a_bfloat16_loss_under_bf16_mixed_is_warned_once_with_the_float32_way(tmp_path):
    # MLX has no autocast: the logits are bfloat16, so a loss on them is too, and its logged values move
    # on bfloat16's grid (EarlyStopping saw ties and stopped a run that still improved).
    from audiotrain import LowPrecisionLossWarning

    with pytest.warns(LowPrecisionLossWarning, match=r"astype\(mx.float32\)") as seen:
        fit(tmp_path, max_epochs=2, precision="bf16-mixed")
    [warned] = [w for w in seen if w.category is LowPrecisionLossWarning]
    # (shown at the user's line: it was step.py's, printing "warn_low_precision_loss(where, precision)")
    assert warned.filename == __file__

    class Float32Loss(TinyClassifier):
        def __call__(self, x):
            return super().__call__(x).astype(mx.float32)

    with warnings.catch_warnings():
        warnings.simplefilter("error", LowPrecisionLossWarning)
        t, _ = fit(tmp_path, max_epochs=1, precision="bf16-mixed", module=Float32Loss())
    assert t.history["train_loss"][-1] != round_to_bfloat16(t.history["train_loss"][-1])


def test_a_bfloat16_loss_under_bf16_true_is_warned_as_under_bf16_mixed(tmp_path):
    # Before: only bf16-mixed warned; a bf16-true run's val_loss moved on bfloat16's grid (2.265625,
    # 2.2890625, 2.34375) without a word, EarlyStopping seeing ties where the loss still changed.
    from audiotrain import LowPrecisionLossWarning

    with pytest.warns(LowPrecisionLossWarning, match=r"precision='bf16-true'.*astype\(mx.float32\)") as seen:
        fit(tmp_path, max_epochs=2, precision="bf16-true")
    assert len([w for w in seen if w.category is LowPrecisionLossWarning]) == 1


@pytest.mark.parametrize("stage", ["validate", "test"])
def test_a_bfloat16_loss_in_a_stand_alone_validate_or_test_is_warned_as_in_fit(tmp_path, stage):
    # Before: only fit warned; a bf16-mixed validate's scores moved on bfloat16's grid without a word (a
    # pitch tracker's cents error read 1056 where float32 gave 1172).
    from audiotrain import LowPrecisionLossWarning

    trainer = quiet_trainer(tmp_path, precision="bf16-mixed")
    with pytest.warns(LowPrecisionLossWarning, match=r"validation_step|test_step") as seen:
        getattr(trainer, stage)(TinyClassifier(), make_batches(32))
    assert len([w for w in seen if w.category is LowPrecisionLossWarning]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", LowPrecisionLossWarning)  # (predict returns no loss: nothing said)
        trainer.predict(TinyClassifier(), make_batches(32))


@pytest.mark.parametrize("precision", ["bf16-mixed", "bf16-true"])
@pytest.mark.parametrize("stage", ["validate", "test"])
def test_a_bf16_evaluation_step_that_only_logs_and_returns_none_runs(tmp_path, stage, precision):
    # Before: Lightning's validation_step / test_step that logs and returns nothing stopped a bf16
    # validate or test (trainer.test(ckpt_path="best") after fit too) with MLX's "__eq__(): incompatible
    # function arguments ... mlx.core.Dtype, NoneType": the low-precision check compared None with bfloat16.
    class LogsOnly(TinyClassifier):
        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", mx.mean(nn.losses.cross_entropy(self(x).astype(mx.float32), y)))

        def test_step(self, batch, batch_idx):
            x, y = batch
            self.log("test_loss", mx.mean(nn.losses.cross_entropy(self(x).astype(mx.float32), y)))

    [means] = getattr(quiet_trainer(tmp_path, precision=precision), stage)(LogsOnly(), make_batches(32))
    assert np.isfinite(means["val_loss" if stage == "validate" else "test_loss"])


@pytest.mark.parametrize("compile", [True, False])
def test_a_frozen_layer_runs_in_bfloat16_under_bf16_mixed_and_keeps_its_float32_weights(tmp_path, compile):
    # Before: only the trainable weights got their bfloat16 copy, so a frozen backbone (the CLAP recipe's
    # --task.freeze_audio_stages with --train.precision bf16-mixed) trained in float32, promoting the
    # layers after it too, and validation ran it in bfloat16.
    seen = {}

    class FrozenFirst(TinyClassifier):
        def on_fit_start(self):
            self.fc1.freeze()

        def compute_loss(self, batch):
            seen["train" if self.training else "val"] = self.fc1(batch[0]).dtype
            return super().compute_loss(batch)

    mx.random.seed(0)
    module = FrozenFirst()
    before = np.array(module.fc1.weight)
    fit(tmp_path, module=module, max_epochs=1, precision="bf16-mixed", compile=compile, val=make_batches(32))
    assert seen == {"train": mx.bfloat16, "val": mx.bfloat16}
    assert module.fc1.weight.dtype == mx.float32 and module.fc2.weight.dtype == mx.float32
    np.testing.assert_array_equal(np.array(module.fc1.weight), before)


@pytest.mark.parametrize("compile", [True, False])
def test_a_frozen_buffer_the_step_updates_keeps_its_updates_under_bf16_mixed(tmp_path, compile):
    # Before: the bfloat16 copies of the frozen weights were replaced by the float32 ones after each step,
    # so a frozen array the step assigns (a counter, a queue, a custom layer's running statistics) lost
    # every update under bf16-mixed (0 here after 6 batches), while precision '32' counted 96.
    seen = {}

    class Counting(TinyClassifier):
        def __init__(self):
            super().__init__()
            self.examples = mx.zeros((1,))
            self.freeze(keys=["examples"], recurse=False)

        def on_fit_start(self):
            self.fc1.freeze()

        def compute_loss(self, batch):
            if self.training:
                self.examples = self.examples + batch[0].shape[0]
                seen["fc1"] = self.fc1(batch[0]).dtype
            return super().compute_loss(batch)

    _, module = fit(tmp_path, module=Counting, max_epochs=1, precision="bf16-mixed", compile=compile)
    assert module.examples.tolist() == [96.0] and module.examples.dtype == mx.float32
    assert seen == {"fc1": mx.bfloat16}  # (the frozen layer still runs in bfloat16)


def test_a_buffer_the_step_updates_resumes_exactly_under_bf16_mixed(tmp_path):
    """A spectral-norm power-iteration vector kept with register_buffer and updated by each step: under
    bf16-mixed a fit resumed from its `last` ended 2e-4 away from the uninterrupted fit's weights (its first
    step ran the buffer on a bfloat16 copy again, which the uninterrupted fit did at its first step only)."""

    class PowerIteration(TinyClassifier):
        def __init__(self):
            super().__init__()
            self.register_buffer("u", mx.ones((16,)) / 4.0)

        def compute_loss(self, batch):
            w = self.fc1.weight
            u = mx.stop_gradient(w @ (w.T @ self.u))
            self.u = u / mx.linalg.norm(u)
            loss, metrics = super().compute_loss(batch)
            return loss + 0.1 * mx.mean(self.u @ w), metrics

    def run(epochs, root, ckpt=None):
        mx.random.seed(0)
        module = PowerIteration()
        t = trainer(root, max_epochs=epochs, precision="bf16-mixed", enable_checkpointing=True)
        t.fit(module, make_batches(), ckpt_path=ckpt)
        return t, weights(module)

    _, whole = run(2, tmp_path / "whole")
    first, _ = run(1, tmp_path / "parts")
    _, resumed = run(2, tmp_path / "parts", ckpt=first.checkpoint_callback.last_model_path)
    for name, value in whole.items():
        np.testing.assert_array_equal(resumed[name], value, err_msg=name)


def round_to_bfloat16(value: float) -> float:
    return mx.array(value, dtype=mx.bfloat16).item()


def test_validation_is_weighted_by_batch_size(tmp_path):
    class ConstantLoss(TinyClassifier):
        def validation_step(self, batch):
            x, _ = batch
            return mx.mean(x[:, 0] * 0 + x.shape[0]), {}

    batches = make_batches(20, 16)  # sizes 16 and 4
    t = trainer(tmp_path, max_epochs=1)
    (out,) = t.validate(ConstantLoss(), batches)  # as Lightning: one dict per loader
    assert out["val_loss"] == pytest.approx((16 * 16 + 4 * 4) / 20)


def test_test_uses_test_step_and_prefix(tmp_path):
    t, module = fit(tmp_path, max_epochs=1)
    (out,) = t.test(module, make_batches(32))
    assert set(out) == {"test_loss", "test_accuracy"}


def test_hooks_fire_in_order(tmp_path):
    seen = []

    class Hooked(TinyClassifier):
        def on_train_start(self):
            seen.append("train_start")

        def on_train_epoch_start(self, epoch):
            seen.append(f"epoch_start{epoch}")

        def on_train_epoch_end(self, epoch, metrics):
            seen.append(f"epoch_end{epoch}:{'val_loss' in metrics}")

        def on_validation_start(self):
            seen.append("val_start")

        def on_validation_end(self, metrics):
            seen.append("val_end")
            self.log("custom", 1.5)

        def on_train_end(self):
            seen.append("train_end")

    counter = Counter()
    t, _ = fit(tmp_path, module=Hooked(), max_epochs=2, val=make_batches(16), callbacks=[counter])
    assert seen == [
        "val_start",  # the sanity check (as in Lightning)
        "val_end",
        "train_start",
        "epoch_start0",
        "val_start",
        "val_end",
        "epoch_end0:True",
        "epoch_start1",
        "val_start",
        "val_end",
        "epoch_end1:True",
        "train_end",
    ]
    assert counter.calls["on_train_batch_end"] == 12 and counter.calls["on_fit_end"] == 1
    assert t.callback_metrics["custom"] == 1.5


def test_module_properties(tmp_path):
    seen = []

    class Props(TinyClassifier):
        def on_train_epoch_end(self, epoch, metrics):
            seen.append((self.current_epoch, self.global_step, self.trainer.max_epochs))

    fit(tmp_path, module=Props(), max_epochs=2)
    assert seen == [(0, 6, 2), (1, 12, 2)]
    with pytest.raises(RuntimeError, match="attached"):
        TinyClassifier().trainer  # noqa: B018


def test_freeze_trains_only_unfrozen(tmp_path):
    mx.random.seed(0)
    module = TinyClassifier()
    module.fc1.freeze()
    before = weights(module)
    trainer(tmp_path, max_epochs=1).fit(module, make_batches())
    after = weights(module)
    assert np.array_equal(before["fc1.weight"], after["fc1.weight"])
    assert not np.array_equal(before["fc2.weight"], after["fc2.weight"])


class BadLoss(TrainModule):
    def __init__(self, kind):
        super().__init__()
        self.kind, self.fc = kind, nn.Linear(8, 3)

    def compute_loss(self, batch):
        x, y = batch
        out = self.fc(x)
        if self.kind == "vector":
            return out.mean(axis=1), {}
        if self.kind == "python_metric":
            return out.mean(), {"acc": 0.5}
        if self.kind == "vector_metric":
            return out.mean(), {"acc": out.mean(axis=0)}
        return "loss"

    def configure_optimizers(self):
        return OptimizerConfig(optimizer=optim.SGD(learning_rate=0.1))


@pytest.mark.parametrize(
    "kind, error, match",
    [
        ("vector", ValueError, "loss must be a scalar, got shape"),
        ("python_metric", TypeError, "metric 'acc' must be a scalar mx.array"),
        ("vector_metric", ValueError, "metric 'acc' must be a scalar"),
        ("string", TypeError, r"must return \(loss, metrics_dict\)"),
    ],
)
def test_bad_compute_loss_outputs(tmp_path, kind, error, match):
    with pytest.raises(error, match=match):
        trainer(tmp_path, max_steps=1, compile=True).fit(BadLoss(kind), make_batches())


def test_a_bad_loss_met_first_in_validation_names_the_method_the_user_wrote(tmp_path):
    # The sanity validation runs the user's code first; the default validation_step only calls it.
    match = r"BadLoss\.compute_loss \(run by the default validation_step\): the loss must be a scalar"
    with pytest.raises(ValueError, match=match):
        trainer(tmp_path, max_steps=1).fit(BadLoss("vector"), make_batches(), make_batches(16))


def test_per_item_scores_returned_by_validation_step_reach_the_batch_end_hook(tmp_path):
    # A Lightning tagger returns {"loss": ..., "scores": probs} from validation_step to gather them in the
    # batch-end hook for a whole-set mAP; it was refused: "metric 'scores' must be a scalar, got shape
    # (4, 3)".
    kept = []

    class ReturnsScores(TinyClassifier):
        def validation_step(self, batch, batch_idx):
            x, _ = batch
            return {"loss": self(x).mean(), "scores": mx.sigmoid(self(x))}

        def on_validation_batch_end(self, outputs, batch, batch_idx):
            kept.append(outputs["scores"].shape)

    t = trainer(tmp_path, max_steps=1)
    t.fit(ReturnsScores(), make_batches(), make_batches(4))
    assert set(kept) == {(4, 3)} and "val_loss" in t.history and "val_scores" not in t.history


def test_numpy_batches_are_rejected_with_a_hint(tmp_path):
    x, y = make_batches()[0]
    with pytest.raises(TypeError, match=r"batch\[0\] is a ndarray.*mlx_transforms"):
        trainer(tmp_path, max_steps=1).fit(TinyClassifier(), [(np.array(x), y)])


@pytest.mark.parametrize("groups", [1, 2])
def test_torchs_parameter_groups_from_configure_optimizers_point_at_a_multioptimizer(tmp_path, groups):
    # A port of torch's no-weight-decay groups ([{"params": ..., "weight_decay": 0.0}, ...]) was told only
    # that a dict needs an 'optimizer' key (or that two optimizers are one too many), not how MLX does it.
    class TorchGroups(TinyClassifier):
        def configure_optimizers(self):
            params = self.trainable_parameters()
            return [{"params": params, "weight_decay": 0.0}, {"params": params, "lr": 1e-3}][:groups]

    with pytest.raises(TypeError, match=r"torch's parameter groups.*optim.MultiOptimizer\(\[") as raised:
        trainer(tmp_path, max_steps=1).fit(TorchGroups(), make_batches())
    assert "weight_decay=0.0" in str(raised.value) and "array(" not in str(raised.value)


class EncoderGroups(TinyClassifier):
    """A 10x lower rate for `fc1` (the "encoder") than for the head, as a MultiOptimizer."""

    def __init__(self, encoder_filter, frozen=False):
        super().__init__()
        self.encoder_filter = encoder_filter
        if frozen:
            self.fc1.freeze()

    def configure_optimizers(self):
        return optim.MultiOptimizer([optim.AdamW(1e-3), optim.AdamW(1e-2)], [self.encoder_filter])


def test_a_multioptimizer_group_whose_filter_takes_no_parameter_is_warned_about(tmp_path):
    # torch names an nn.Sequential's layers 'encoder.0.' where MLX says 'encoder.layers.0.': a filter
    # written torch's way took nothing, and the "pretrained encoder" trained at the head's 10x rate with no
    # word at all. The same filter on a frozen encoder takes its weights: that group is not warned about.
    with pytest.warns(PossibleUserWarning, match=r"group 1 \(AdamW\): its filter took none.*'fc1\.weight'"):
        trainer(tmp_path, max_steps=1).fit(
            EncoderGroups(lambda path, _: path.startswith("fc0.")), make_batches()
        )
    with pytest.warns(PossibleUserWarning, match=r"group 2 \(AdamW\): the filters before it took every"):
        trainer(tmp_path, max_steps=1).fit(EncoderGroups(lambda path, _: True), make_batches())
    with warnings.catch_warnings():
        warnings.simplefilter("error", PossibleUserWarning)
        frozen = EncoderGroups(lambda path, _: path.startswith("fc1."), frozen=True)
        trainer(tmp_path, max_steps=1).fit(frozen, make_batches())


def test_a_multioptimizer_filter_failing_only_on_frozen_parameters_still_trains(tmp_path):
    # MLX calls the filters on the trainable parameters alone: one that cannot take a frozen weight (here
    # fc1's, frozen) is no mistake, and the check of the groups must not refuse it.
    def head_only(path, _):
        if path.startswith("fc1."):
            raise ValueError("a frozen weight")
        return path.endswith("bias")

    trainer(tmp_path, max_steps=1).fit(EncoderGroups(head_only, frozen=True), make_batches())


@pytest.mark.parametrize(
    "encoder_filter, raised",
    [(lambda path, _: path.startwith("fc1."), "AttributeError"), (lambda path: True, "TypeError")],
)
def test_a_multioptimizer_filter_that_fails_is_refused_naming_its_group(tmp_path, encoder_filter, raised):
    # A typo in a filter, or a filter of one argument, failed as a bare traceback from MLX's
    # MultiOptimizer._split_dictionary, with no word of how MLX calls a filter.
    match = rf"EncoderGroups.configure_optimizers: the MultiOptimizer's filter 1 .* raised {raised}"
    match += r".*filter\(path, array\)"
    with pytest.raises(TypeError, match=match):
        trainer(tmp_path, max_steps=1).fit(EncoderGroups(encoder_filter), make_batches())


def test_configure_optimizers_must_return_an_optimizer(tmp_path):
    class Bad(TinyClassifier):
        def configure_optimizers(self):
            return "sgd"

    with pytest.raises(TypeError, match="must return an OptimizerConfig, an mlx.optimizers.Optimizer"):
        trainer(tmp_path, max_steps=1).fit(Bad(), make_batches())
    with pytest.raises(TypeError, match="mlx.optimizers.Optimizer"):
        OptimizerConfig(optimizer="adam")
    # (a LearningRateMonitor failed on a name that is no string in the first training step, raw)
    with pytest.raises(TypeError, match=r"OptimizerConfig.lr_log_name must be a string.*got 3"):
        OptimizerConfig(optim.SGD(learning_rate=0.1), lr_log_name=3)


def test_progress_bar_writes_to_stderr(tmp_path, capsys):
    fit(tmp_path, max_epochs=1, enable_progress_bar=True, val=make_batches(16))
    err = capsys.readouterr().err
    assert "Epoch 0" in err and "loss=" in err
    fit(tmp_path, max_epochs=1, enable_progress_bar=False)
    assert "Epoch 0" not in capsys.readouterr().err


@pytest.mark.parametrize("debug_lazy_eval", [False, True])
def test_progress_numbers_never_wait_for_the_step_on_the_device(tmp_path, debug_lazy_eval):
    """Steps are evaluated one ahead of the host (mx.async_eval): inside an epoch the progress bar shows the
    step before the one still running; at the epoch's end, the last step. debug_lazy_eval evaluates every
    step at once, so it shows each step's own numbers."""

    class Watch(Callback):
        def __init__(self):
            self.losses, self.shown, self.at_epoch_end = [], [], []

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            self.shown.append(trainer.progress_metrics()["loss"])
            self.losses.append(float(outputs["loss"]))

        def on_train_epoch_end(self, trainer, module):
            self.at_epoch_end.append(trainer.progress_metrics()["loss"])

    watch = Watch()
    fit(tmp_path, max_epochs=2, callbacks=[watch], compile=True, debug_lazy_eval=debug_lazy_eval)
    per_epoch = len(make_batches())
    expected = list(watch.losses) if debug_lazy_eval else [watch.losses[0], *watch.losses[:-1]]
    assert watch.shown == pytest.approx(expected)  # the very first step has no step before it
    assert watch.at_epoch_end == pytest.approx([watch.losses[per_epoch - 1], watch.losses[-1]])


def test_a_callbacks_loss_reads_as_the_float_it_stands_for(tmp_path):
    """`outputs["loss"]` (evaluated only when read) compares, formats, hashes and equals as its float does."""

    class Watch(Callback):
        def __init__(self):
            self.seen = []

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            loss = outputs["loss"]
            value = float(loss)
            self.seen.append(
                (
                    f"{loss:.3f}" == f"{value:.3f}",
                    loss <= value and loss >= value and loss == value and loss != "not a number",
                    not (loss < value or loss > value) and loss < value + 1 and loss > value - 1,
                    hash(loss) == hash(value),
                )
            )

    watch = Watch()
    fit(tmp_path, max_epochs=1, callbacks=[watch])
    assert watch.seen and all(all(checks) for checks in watch.seen)


@pytest.mark.parametrize("nonfinite_guard", [True, False])  # the guard off takes the update's other path
def test_on_after_optimizer_step_runs_in_graph_after_each_update(tmp_path, nonfinite_guard):
    class Clamped(TinyClassifier):
        def __init__(self):
            super().__init__(lr=1.0)
            self.scale = mx.array(1.0)

        def compute_loss(self, batch):
            loss, metrics = super().compute_loss(batch)
            return loss - 10.0 * self.scale, metrics  # pushes scale up fast

        def on_after_optimizer_step(self):
            self.scale = mx.clip(self.scale, 0.0, 1.5)

    t, module = fit(tmp_path, module=Clamped, max_epochs=2, compile=True, nonfinite_guard=nonfinite_guard)
    assert float(module.scale) == pytest.approx(1.5)
    assert t._train_step.traces == 1  # the hook is part of the one compiled update


def test_nonfinite_guard_off_lets_the_update_through_and_grad_norm_can_be_dropped(tmp_path):
    batches = poisoned(make_batches(), {2})
    logger = RecordingLogger()
    _, module = fit(
        tmp_path,
        module=NaNAfter,
        batches=batches,
        max_epochs=1,
        compile=True,
        logger=logger,
        log_every_n_steps=1,
        nonfinite_guard=False,
        track_grad_norm=False,
    )
    assert not all(np.isfinite(v).all() for v in weights(module).values())
    assert "grad_norm" not in logger.keys() and "skipped_steps" not in logger.keys()


@pytest.mark.parametrize("compile_", [True, False])
def test_an_error_while_tracing_leaves_the_process_and_the_weights_usable(tmp_path, compile_):
    """A user error raised mid-trace used to leave tracer placeholders in the model, optimizer and
    RNG state: every later MLX call in the process failed ("eval an array without a primitive"),
    and a model that had trained for an epoch could not even be saved."""

    class WrongReturn(TinyClassifier):
        def compute_loss(self, batch):
            return (*super().compute_loss(batch), 1)

    class NoValidationLoss(TinyClassifier):
        def validation_step(self, batch):
            return None  # a Lightning habit

    trainer = Trainer(max_epochs=1, enable_progress_bar=False, enable_checkpointing=False, compile=compile_)
    with pytest.raises(TypeError, match="must return"):
        trainer.fit(WrongReturn(), make_batches())
    mx.eval(mx.random.normal((2,)))  # the RNG works

    model = NoValidationLoss()
    trainer = Trainer(max_epochs=1, enable_progress_bar=False, default_root_dir=tmp_path, compile=compile_)
    with pytest.raises(TypeError, match="validation_step returned None and logged nothing"):
        trainer.fit(model, make_batches(), make_batches(32))
    trained = weights(model)  # readable after a full epoch
    saved = trainer.save_checkpoint(tmp_path / "after-error")
    assert (saved / "model.safetensors").exists()

    fresh = TinyClassifier()
    Trainer(max_epochs=1, enable_progress_bar=False, enable_checkpointing=False, compile=compile_).fit(
        fresh, make_batches()
    )
    assert weights(fresh).keys() == trained.keys()


class RefusesHalfPrecisionBatches(TinyClassifier):
    def compute_loss(self, batch):
        if batch[0].dtype == mx.float16:
            raise ValueError("float16 batches are refused")
        return super().compute_loss(batch)


def test_reading_a_value_in_a_step_names_the_file_and_line_that_read_it():
    # (the message named the step alone: in a long training_step, or a notebook's last line, the read was
    # left to find in the chained traceback)
    class BranchesOnTheLoss(TinyClassifier):
        def compute_loss(self, batch):
            loss, metrics = super().compute_loss(batch)
            if loss > 1e9:  # Python control flow on an array
                loss = loss * 0
            return loss, metrics

    line = inspect.getsourcelines(BranchesOnTheLoss.compute_loss)[1] + 2  # (the `if`)
    trainer = Trainer(max_epochs=1, enable_progress_bar=False, enable_checkpointing=False)
    with pytest.raises(RuntimeError, match="read an array's value") as info:
        trainer.fit(BranchesOnTheLoss(), make_batches())
    assert f"test_trainer.py:{line}: `if loss > 1e9:" in str(info.value)


def test_a_read_inside_a_package_installed_with_pip_user_names_the_users_line(tmp_path, monkeypatch):
    # (a package in the user's site-packages, or a Debian system Python's dist-packages, is no sysconfig
    # path: its line was named as the one that read the value, not the user's call into it)
    user_site = tmp_path / "user_site"
    user_site.mkdir()
    (user_site / "threshold_helper.py").write_text("def above(x, limit):\n    return bool(x > limit)\n")
    monkeypatch.setattr(site, "getusersitepackages", lambda: str(user_site))
    monkeypatch.syspath_prepend(str(user_site))
    import threshold_helper

    class AsksAHelper(TinyClassifier):
        def compute_loss(self, batch):
            loss, metrics = super().compute_loss(batch)
            if threshold_helper.above(loss, 1e9):  # the helper reads the value
                loss = loss * 0
            return loss, metrics

    line = inspect.getsourcelines(AsksAHelper.compute_loss)[1] + 2
    trainer = Trainer(max_epochs=1, enable_progress_bar=False, enable_checkpointing=False)
    with pytest.raises(RuntimeError, match="read an array's value") as info:
        trainer.fit(AsksAHelper(), make_batches())
    assert f"test_trainer.py:{line}: `if threshold_helper.above(loss, 1e9):" in str(info.value)


def test_test_without_a_test_step_says_to_define_one_when_the_training_step_logs_per_step():
    # (Lightning's habit self.log(..., on_step=True, on_epoch=True) in training_step: run by the default
    # test_step, it was refused with no word of the missing test_step, the user's fix)
    class LogsEachStep(TinyClassifier):
        def compute_loss(self, batch):
            loss, metrics = super().compute_loss(batch)
            self.log("acc", metrics["accuracy"], on_step=True, on_epoch=True)
            return loss, metrics

    trainer = Trainer(max_epochs=1, enable_progress_bar=False, enable_checkpointing=False)
    with pytest.raises(ValueError, match=r"no test_step of its own.*define test_step"):
        trainer.test(LogsEachStep(), make_batches())


def test_a_failed_trace_for_a_batch_of_a_new_dtype_leaves_the_weights_usable():
    """MLX traces a compiled step again for a batch whose dtypes are new, not only for new shapes: a
    failure in that trace must not leave tracer placeholders in the trained weights."""
    batches = make_batches(32)
    batches.append((batches[0][0].astype(mx.float16), batches[0][1]))  # (the same shapes)
    model = RefusesHalfPrecisionBatches()
    with pytest.raises(ValueError, match="float16 batches are refused"):
        Trainer(max_epochs=1, enable_progress_bar=False, enable_checkpointing=False).fit(model, batches)
    assert all(np.isfinite(v).all() for v in weights(model).values())  # (readable: no placeholders)


def test_reading_a_value_inside_compute_loss_says_what_to_do_instead():
    class ReadsItem(TinyClassifier):
        def compute_loss(self, batch):
            loss, metrics = super().compute_loss(batch)
            if loss.item() > 1e9:  # Python control flow on an array
                loss = loss * 0
            return loss, metrics

    trainer = Trainer(max_epochs=1, enable_progress_bar=False, enable_checkpointing=False)
    with pytest.raises(RuntimeError, match=r"ReadsItem.compute_loss read an array's value.*mx.where"):
        trainer.fit(ReadsItem(), make_batches())
    mx.eval(mx.random.normal((2,)))


@pytest.mark.parametrize("nonfinite_guard", [True, False])
@pytest.mark.parametrize("optimizer", [optim.AdamW, optim.SGD])  # (AdamW: the inlined guarded update)
def test_reading_a_value_inside_on_after_optimizer_step_names_that_hook(nonfinite_guard, optimizer):
    # It runs inside the compiled step too: the error used to name compute_loss, which read nothing.
    class ReadsInConstraint(TinyClassifier):
        def on_after_optimizer_step(self):
            if float(mx.abs(self.fc1.weight).max()) > 1e9:  # Python control flow on an array
                self.fc1.weight = mx.clip(self.fc1.weight, -1e9, 1e9)

        def configure_optimizers(self):
            return OptimizerConfig(optimizer=optimizer(learning_rate=1e-2))

    trainer = Trainer(
        max_epochs=1, enable_progress_bar=False, enable_checkpointing=False, nonfinite_guard=nonfinite_guard
    )
    with pytest.raises(
        RuntimeError, match=r"^ReadsInConstraint.on_after_optimizer_step read an array's value"
    ):
        trainer.fit(ReadsInConstraint(), make_batches())
    mx.eval(mx.random.normal((2,)))


def test_a_metric_named_loss_is_rejected():
    class ShadowsLoss(TinyClassifier):
        def compute_loss(self, batch):
            loss, metrics = super().compute_loss(batch)
            return loss, {"loss": loss * 100}

    with pytest.raises(ValueError, match="a metric is named 'loss'"):
        Trainer(max_epochs=1, enable_progress_bar=False, enable_checkpointing=False).fit(
            ShadowsLoss(), make_batches()
        )


@pytest.mark.parametrize("compile_", [True, False])
def test_freezing_and_unfreezing_at_an_epoch_start_take_effect(compile_):
    """The compiled step was traced once over the parameters trainable at the start, so a layer
    frozen at epoch 1 kept training and one unfrozen at epoch 1 never did."""

    class Schedule(TinyClassifier):
        def __init__(self, start_frozen):
            super().__init__()
            self.start_frozen = start_frozen
            if start_frozen:
                self.fc1.freeze()

        def on_train_epoch_start(self, epoch):
            if epoch == 1:
                (self.fc1.unfreeze if self.start_frozen else self.fc1.freeze)()
            if epoch == 1:
                self.at_epoch_1 = np.array(self.fc1.weight)

    freezes, unfreezes = Schedule(start_frozen=False), Schedule(start_frozen=True)
    initial = np.array(unfreezes.fc1.weight)
    for model in (freezes, unfreezes):
        Trainer(max_epochs=2, enable_progress_bar=False, enable_checkpointing=False, compile=compile_).fit(
            model, make_batches()
        )
    np.testing.assert_array_equal(np.array(freezes.fc1.weight), freezes.at_epoch_1)  # frozen: unchanged
    np.testing.assert_array_equal(unfreezes.at_epoch_1, initial)  # frozen through epoch 0
    assert not np.array_equal(np.array(unfreezes.fc1.weight), initial)  # trains once unfrozen


def test_a_fully_frozen_model_is_a_clear_error():
    model = TinyClassifier()
    model.freeze()
    with pytest.raises(ValueError, match="no trainable parameters"):
        Trainer(max_epochs=1, enable_progress_bar=False, enable_checkpointing=False).fit(
            model, make_batches()
        )


def test_a_generator_loader_consumed_in_the_first_epoch_is_an_error_not_an_endless_loop():
    batches = (b for b in make_batches())
    trainer = Trainer(max_epochs=None, max_steps=100, enable_progress_bar=False, enable_checkpointing=False)
    with pytest.raises(ValueError, match="yielded no batches in epoch 1.*consumed only once"):
        trainer.fit(TinyClassifier(), batches)


def test_a_chained_validation_loader_read_once_is_an_error_not_stale_values(tmp_path):
    # Two validation sets chained into one (Lightning's [clean, noisy] without several loaders): the first
    # epoch read them, the later ones nothing, and history.json and the ModelCheckpoint got epoch 0's
    # val_loss again for every epoch after it, with only a warning.
    import itertools

    val = itertools.chain(make_batches(32, seed=1), make_batches(32, seed=2))
    trainer = quiet_trainer(tmp_path, max_epochs=3)
    with pytest.raises(ValueError, match="validation loader yielded no batches in epoch 1.*only once"):
        trainer.fit(TinyClassifier(), make_batches(32), val)
    assert trainer.current_epoch == 1


def test_values_logged_in_epoch_end_hooks_count_for_that_epoch(tmp_path):
    """self.log in on_train_epoch_end / on_validation_end reached callbacks one epoch late (or
    raised KeyError in ModelCheckpoint(monitor=...)) and never reached the history."""
    from audiotrain.train.callbacks import ModelCheckpoint

    class LogsLate(TinyClassifier):
        def on_train_epoch_end(self, epoch, metrics):
            self.log("epoch_score", 10.0 - epoch)

        def on_validation_end(self, metrics):
            self.log("val_extra", metrics["val_loss"] * 2)

    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ck", monitor="epoch_score", mode="min", save_top_k=1)
    trainer = Trainer(
        max_epochs=3, enable_progress_bar=False, default_root_dir=tmp_path, callbacks=[checkpoint]
    )
    trainer.fit(LogsLate(), make_batches(), make_batches(32))
    history = trainer.history
    assert history["epoch_score"] == [10.0, 9.0, 8.0]
    assert history["val_extra"] == pytest.approx([2 * v for v in history["val_loss"]])
    assert checkpoint.best_model_score == pytest.approx(8.0)


def test_logging_a_non_scalar_names_the_metric():
    class LogsVector(TinyClassifier):
        def on_train_epoch_end(self, epoch, metrics):
            self.log("per_class", mx.zeros(3))

    with pytest.raises(ValueError, match=r"LogsVector.log\('per_class', ...\).*shape \(3,\)"):
        Trainer(max_epochs=1, enable_progress_bar=False, enable_checkpointing=False).fit(
            LogsVector(), make_batches()
        )


def test_lightning_spellings_bf16_single_callback_and_prefixed_metrics():
    assert Trainer(precision="bf16", max_epochs=1).precision == "bf16-mixed"  # as in Lightning

    class Named(TinyClassifier):
        def compute_loss(self, batch):
            loss, metrics = super().compute_loss(batch)
            return loss, {"train_acc": metrics["accuracy"]}

    recorder = Callback()
    trainer = Trainer(
        max_epochs=1,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,  # (no default callbacks: the one passed alone)
        callbacks=recorder,
    )
    assert trainer.callbacks == [recorder]
    trainer.fit(Named(), make_batches())
    assert "train_acc" in trainer.history and "train_train_acc" not in trainer.history


def test_a_fraction_of_batches_that_rounds_to_none_is_an_error():
    trainer = Trainer(
        max_epochs=1, limit_train_batches=0.1, enable_progress_bar=False, enable_checkpointing=False
    )
    with pytest.raises(ValueError, match=r"limit_train_batches=0.1.*less than one batch"):
        trainer.fit(TinyClassifier(), make_batches())


class OneCycleUser(TinyClassifier):
    """A module that sizes its schedule as a OneCycle user does: it keeps what the Trainer estimated."""

    def configure_optimizers(self):
        self.estimated_steps = self.trainer.estimated_stepping_batches
        return super().configure_optimizers()


def test_estimated_stepping_batches_counts_an_epochs_short_last_window_as_an_update(tmp_path):
    # 7 batches an epoch, 2 a window: 4 updates an epoch (the last of one batch), as Lightning's ceil. A
    # schedule sized with it (OneCycle's total_steps) ends with the fit, not a quarter early.
    trainer = quiet_trainer(tmp_path, max_epochs=3, accumulate_grad_batches=2)
    model = OneCycleUser()
    trainer.fit(model, make_batches(112, batch_size=16))
    assert model.estimated_steps == trainer.global_step == 3 * 4


def test_estimated_stepping_batches_is_max_steps_where_it_ends_the_fit_first(tmp_path):
    # Lightning's: the fewer of max_steps and the epochs' updates (60 here), so OneCycle ends with the fit.
    trainer = quiet_trainer(tmp_path, max_epochs=10, max_steps=5)
    model = OneCycleUser()
    trainer.fit(model, make_batches())
    assert model.estimated_steps == trainer.global_step == 5


def ended_schedule_warnings(trainer, module, **fit_kwargs) -> list[str]:
    """The warnings `fit` gave of a learning-rate schedule that ends before the fit (6 batches an epoch)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(module, make_batches(), **fit_kwargs)
    return [str(w.message) for w in caught if "ends before this fit does" in str(w.message)]


def one_cycle(total):
    from audiotrain.train import OneCycleScheduler

    return OneCycleScheduler(0.1, total)


def cosine_to_zero(total):
    from audiotrain.train import WarmupCosineScheduler

    return WarmupCosineScheduler(0.1, 1, total)


# Each way a Lightning user wires a per-step schedule (as the optimizer's learning rate, as an lr_scheduler
# stepped per step, per parameter group through a MultiOptimizer), sized by hand for 1 epoch of 3.
SCHEDULE_WIRINGS = {
    "learning_rate": lambda schedule: optim.SGD(learning_rate=schedule),
    "OptimizerConfig": lambda schedule: OptimizerConfig(optim.SGD(learning_rate=schedule)),
    "lr_scheduler interval step": lambda schedule: {
        "optimizer": optim.SGD(learning_rate=0.1),
        "lr_scheduler": {"scheduler": schedule, "interval": "step"},
    },
    "MultiOptimizer": lambda schedule: optim.MultiOptimizer(
        [optim.SGD(learning_rate=0.01), optim.SGD(learning_rate=schedule)], [lambda path, _: "fc1" in path]
    ),
}


@pytest.mark.parametrize("make_schedule", [one_cycle, cosine_to_zero])
@pytest.mark.parametrize("wiring", SCHEDULE_WIRINGS)
def test_a_schedule_that_ends_before_the_fit_at_a_rate_that_trains_nothing_warns_once(
    tmp_path, wiring, make_schedule
):
    # torch's OneCycleLR raises past its total_steps ("Tried to step 7 times"); here the schedule holds its
    # final rate (4e-07 for OneCycle's defaults, 0 for a cosine to min_lr=0): 12 of the 18 steps trained at
    # next to nothing without a word.
    from tasks import Returns

    schedule = make_schedule(6)
    module = Returns(lambda m: SCHEDULE_WIRINGS[wiring](schedule))
    messages = ended_schedule_warnings(quiet_trainer(tmp_path, max_epochs=3), module)
    assert len(messages) == 1, messages
    assert f"{type(schedule).__name__}(total_steps=6)" in messages[0]
    assert "takes 18 optimizer steps (max_epochs=3 x 6 batches an epoch)" in messages[0]
    assert "its last 12 optimizer steps train at its final rate" in messages[0]
    assert "total_steps=self.trainer.estimated_stepping_batches" in messages[0]


def test_a_one_cycle_lr_scheduler_stepped_per_epoch_that_ends_before_max_epochs_warns(tmp_path):
    # Lightning's default interval "epoch": total_steps counts epochs, 4 of the fit's 6.
    from tasks import Returns

    module = Returns(lambda m: ([optim.SGD(learning_rate=0.1)], [one_cycle(4)]))
    messages = ended_schedule_warnings(quiet_trainer(tmp_path, max_epochs=6), module)
    assert len(messages) == 1, messages
    assert (
        "stepped per epoch" in messages[0]
        and "its last 2 epochs train at its final rate 4e-07" in messages[0]
    )
    assert "total_steps=self.trainer.max_epochs" in messages[0]


@pytest.mark.parametrize("case", ["estimated_stepping_batches", "max_steps", "min_lr", "time alone"])
def test_a_schedule_that_lasts_the_fit_or_holds_a_rate_to_train_at_does_not_warn(tmp_path, case):
    # Each case beside its twin one step (or one setting) away, which warns: the line is where it should be.
    from audiotrain.train import WarmupCosineScheduler

    from tasks import Returns

    def schedule(m, lasts):
        if case == "estimated_stepping_batches":  # (sized as the docs say; 1 short: a hand-sized slip)
            return one_cycle(m.trainer.estimated_stepping_batches - (0 if lasts else 1))
        if case == "min_lr":  # (training on at a small rate after the decay: a common intent)
            return WarmupCosineScheduler(0.1, 1, 6, min_lr=1e-4 if lasts else 0.0)
        return one_cycle(6)

    said = []
    for lasts in (True, False):
        settings = {"max_epochs": 3, "accumulate_grad_batches": 2}
        if case == "max_steps":
            settings["max_steps"] = 6 if lasts else 7
        if case == "time alone" and lasts:  # (a fit that knows no total: nothing to compare with)
            settings.update(max_epochs=None, max_time={"seconds": 0.5})
        module = Returns(lambda m, lasts=lasts: optim.SGD(learning_rate=schedule(m, lasts)))
        said.append(len(ended_schedule_warnings(quiet_trainer(tmp_path / str(lasts), **settings), module)))
    assert said == [0, 1]


def test_a_resumed_fit_that_outlasts_its_schedule_warns_and_only_rank_0_says_it(tmp_path, monkeypatch):
    # The schedule counts the optimizer's steps from the fit's start (restored with the checkpoint): sized
    # for 2 epochs, a resume that raises max_epochs to 4 trains its last 12 steps at the final rate.
    from audiotrain.distributed import collectives

    from tasks import Returns

    def module():
        return Returns(lambda m: optim.SGD(learning_rate=one_cycle(12)))

    first = quiet_trainer(tmp_path, max_epochs=1)
    assert ended_schedule_warnings(first, module()) == []
    saved = first.save_checkpoint(tmp_path / "epoch1")
    said = []
    for rank in (0, 1):  # (as each rank of a data parallel job sees itself: each takes the same path)
        monkeypatch.setattr(collectives, "is_main_process", lambda rank=rank: rank == 0)
        resumed = quiet_trainer(tmp_path / str(rank), max_epochs=4)
        said.append(ended_schedule_warnings(resumed, module(), ckpt_path=str(saved)))
        assert resumed.global_step == 24
    assert len(said[0]) == 1 and said[1] == []
    assert "takes 24 optimizer steps" in said[0][0] and "its last 12 optimizer steps" in said[0][0]


def test_ckpt_path_best_and_last_and_estimated_stepping_batches(tmp_path):
    from audiotrain.train.callbacks import ModelCheckpoint

    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ck", monitor="val_loss", save_last=True)
    trainer = Trainer(
        max_epochs=3, accumulate_grad_batches=2, enable_progress_bar=False, callbacks=[checkpoint],
        default_root_dir=tmp_path,
    )  # fmt: skip
    model = OneCycleUser()
    trainer.fit(model, make_batches(), make_batches(32))
    assert model.estimated_steps == 3 * 3  # 6 batches per epoch, 2 per step
    (best,) = trainer.validate(model, make_batches(32), ckpt_path="best")
    assert best["val_loss"] == pytest.approx(checkpoint.best_model_score)
    trainer.validate(model, make_batches(32), ckpt_path="last")
    with pytest.raises(ValueError, match='ckpt_path="best": this Trainer has no ModelCheckpoint'):
        Trainer(max_epochs=1, enable_checkpointing=False).validate(model, make_batches(32), ckpt_path="best")


def test_a_hand_edited_trainer_state_names_the_bad_field(tmp_path, monkeypatch):
    from audiotrain.train.checkpoint import CheckpointError

    # In tmp_path, where nothing may land in ./logs: Trainer's default_root_dir, where the default
    # ModelCheckpoint claims a folder before the checkpoint is read (the refused resumes left it in the
    # folder pytest runs in).
    monkeypatch.chdir(tmp_path)
    trainer = Trainer(max_epochs=1, enable_progress_bar=False, default_root_dir=tmp_path)
    trainer.fit(TinyClassifier(), make_batches())
    folder = trainer.save_checkpoint(tmp_path / "edited")
    state = json.loads((folder / "trainer_state.json").read_text())
    key = state["random"].pop("mlx")
    (folder / "trainer_state.json").write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match="'random.mlx' must be two unsigned ints"):
        Trainer(max_epochs=2, default_root_dir=tmp_path).fit(
            TinyClassifier(), make_batches(), ckpt_path=str(folder)
        )
    state["random"]["mlx"], state["progress"]["epoch"] = key, "one"
    (folder / "trainer_state.json").write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match="'progress.epoch' must be an int >= 0, got 'one'"):
        Trainer(max_epochs=2, default_root_dir=tmp_path).fit(
            TinyClassifier(), make_batches(), ckpt_path=str(folder)
        )
    state["progress"]["epoch"], state["random"]["numpy"]["keys"] = 1, "not a generator state"
    (folder / "trainer_state.json").write_text(json.dumps(state))
    with pytest.raises(
        CheckpointError,
        match=r"edited.trainer_state.json: 'random.numpy.keys' must be 624 ints .*, got 'not a generator",
    ):
        Trainer(max_epochs=2, default_root_dir=tmp_path).fit(
            TinyClassifier(), make_batches(), ckpt_path=str(folder)
        )
    assert not (tmp_path / "logs").exists()


def _edit(state, path, value):
    """`state` with the field at dotted `path` (list indices as numbers) set to `value`."""
    *parents, last = path
    for key in parents:
        state = state[key]
    state[last] = value


WEIGHT = r"'running_means.pending\[0\]\[1\]' \(the step's weight\) must be a number >= 0"


@pytest.mark.parametrize(
    "path, value, said",
    [
        (["elapsed"], "x", r"'elapsed' must be a number of seconds >= 0, got 'x'"),
        (["history", "rows"], "x", r"'history.rows' must be a list of objects \(one per epoch\), got 'x'"),
        (["random", "numpy", "keys"], [1, 2, 3], r"'random.numpy.keys' must be 624 ints .*a list of 3"),
        (["random", "python", "internal"], [1], r"'random.python.internal' must be 625 ints .*a list of 1"),
        (["progress", "global_step"], 10**30, rf"'progress.global_step' must be at most .*, got {10**30}"),
        (["progress", "global_step"], -5, r"'progress.global_step' must be an int >= 0, got -5"),
        (
            ["random", "mlx"],
            [1, 2, 3],
            r"'random.mlx' must be two unsigned ints \(the PRNG key\), got \[1, 2, 3\]",
        ),
        (
            ["random", "mlx_ranks"],
            [[1, 2], [3]],
            r"'random.mlx_ranks' must be a list of PRNG keys, two unsigned ints each, got \[\[1, 2\], \[3\]",
        ),
        (["running_means", "pending"], [[{"train_loss": 1.0}, float("nan")]], rf"{WEIGHT}, got nan"),
        (["running_means", "pending"], [[{"train_loss": 1.0}, -4.0]], rf"{WEIGHT}, got -4.0"),
        (
            ["running_means", "in_interval"],
            3,
            r"'running_means.in_interval' must be a count of its 0 pending steps, got 3",
        ),
        # Coerced by bool() ("false" resumed as True: a validation that was not due), or accepted unchecked.
        (["progress", "validation_pending"], "false", r"'progress.validation_pending' must be true or false"),
        (["progress", "validated_epoch"], 10**24, r"'progress.validated_epoch' must be an int from -1"),
        (["progress", "validated_epoch"], -2, r"'progress.validated_epoch' must be an int from -1 .*got -2"),
        # Trained on, then failed in the plot or export of the run's end, naming no field.
        (["history", "rows", 0, "train_loss"], [1, 2], r"'history.rows\[0\].train_loss' must be a number"),
        (["history", "rows", 0, "train_loss"], {}, r"'history.rows\[0\].train_loss' must be a number"),
        (["trainable", "now"], [], r"'trainable.now' must name the parameters the fit trained, got \[\]"),
        (["history", "rows", 0, "epoch"], 0.5, r"'history.rows\[0\].epoch' must be an int >= 0, got 0.5"),
        # A resume read the last row's epoch: a bare KeyError: 'epoch'.
        (["history", "rows", 0], {"step": 3}, r"'history.rows\[0\]' must hold its 'epoch' \(an int >= 0\)"),
        # Each failed as a bare AttributeError ("'str' object has no attribute 'get'") in the resume's checks.
        (["config"], "x", r"'config' must be an object \(the run's settings\), got 'x'"),
        (["config", "trainer"], [], r"'config.trainer' must be an object, got \[\]"),
        (["config", "trainer"], None, r"'config.trainer' must be an object, got None"),
        # Taken as the set of its characters: no error named it.
        (["step_frozen_written"], "count", r"'step_frozen_written' must be a list of parameter names"),
    ],
)
def test_a_hand_edited_run_field_is_refused_by_name(tmp_path, monkeypatch, path, value, said):
    """These failed naming no field ("holds a value this audiotrain cannot restore: state vector is the
    wrong size"), or passed: a step count beyond int64, and a NaN or negative step weight (the epoch's mean
    loss came out NaN, or off)."""
    from audiotrain.train.checkpoint import CheckpointError

    monkeypatch.chdir(tmp_path)
    trainer = Trainer(max_epochs=1, enable_progress_bar=False, default_root_dir=tmp_path)
    trainer.fit(TinyClassifier(), make_batches())
    folder = trainer.save_checkpoint(tmp_path / "edited")
    state = json.loads((folder / "trainer_state.json").read_text())
    _edit(state, path, value)
    (folder / "trainer_state.json").write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match=rf"edited.trainer_state.json: {said}"):
        Trainer(max_epochs=2, default_root_dir=tmp_path).fit(
            TinyClassifier(), make_batches(), ckpt_path=str(folder)
        )


def test_a_key_given_twice_in_a_checkpoints_json_is_refused(tmp_path, monkeypatch):
    """The last one won without a word (``"global_step": 4, "global_step": 1000`` resumed at step 1000), where
    a config file and a safetensors header refuse it."""
    from audiotrain.train.checkpoint import CheckpointError

    monkeypatch.chdir(tmp_path)
    trainer = Trainer(max_epochs=1, enable_progress_bar=False, default_root_dir=tmp_path)
    trainer.fit(TinyClassifier(), make_batches())
    folder = trainer.save_checkpoint(tmp_path / "edited")
    file = folder / "trainer_state.json"
    step = json.loads(file.read_text())["progress"]["global_step"]
    text = file.read_text().replace(
        f'"global_step": {step}', f'"global_step": {step}, "global_step": 1000', 1
    )
    file.write_text(text)
    with pytest.raises(CheckpointError, match=r"trainer_state.json: 'global_step' given twice in one object"):
        Trainer(max_epochs=2, default_root_dir=tmp_path).fit(
            TinyClassifier(), make_batches(), ckpt_path=str(folder)
        )


def test_resuming_with_other_accumulation_or_nothing_left_to_train_says_so(tmp_path):
    trainer = Trainer(
        max_epochs=1, accumulate_grad_batches=2, enable_progress_bar=False, default_root_dir=tmp_path
    )
    model = TinyClassifier()
    trainer.fit(model, make_batches())
    saved = trainer.save_checkpoint(tmp_path / "acc2")  # at a window boundary: 6 batches, 3 windows
    # (In the middle of a window another accumulation is refused: test_resume.py.)
    other = Trainer(max_epochs=2, enable_progress_bar=False, default_root_dir=tmp_path / "other")
    with pytest.warns(UserWarning, match="accumulate_grad_batches=2, this Trainer has 1: from here on an"):
        other.fit(TinyClassifier(), make_batches(), ckpt_path=str(saved))
    assert other.global_step == 3 + 6
    # And from none to some (at the boundary of every window): the step state gains its accumulators.
    more = Trainer(
        max_epochs=3, accumulate_grad_batches=2, enable_progress_bar=False, default_root_dir=tmp_path / "more"
    )
    with pytest.warns(UserWarning, match="accumulate_grad_batches=1, this Trainer has 2: from here on an"):
        more.fit(TinyClassifier(), make_batches(), ckpt_path=str(other.save_checkpoint(tmp_path / "acc1")))
    assert more.global_step == 3 + 6 + 3
    with pytest.warns(UserWarning, match="nothing to train, already at epoch 1"):
        trainer.fit(model, make_batches())


def test_a_resumed_fit_says_on_stderr_which_checkpoint_it_restored(tmp_path, capsys):
    """A resumed fit said nothing of its checkpoint: with ckpt_path="last" (the newest `last` on disk) the
    log did not record which run went on. Lightning logs "Restored all states from the checkpoint at ..."."""
    from audiotrain.train.callbacks import ModelCheckpoint

    def trainer(epochs):
        saves = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
        return quiet_trainer(tmp_path, max_epochs=epochs, enable_checkpointing=True, callbacks=[saves])

    trainer(1).fit(TinyClassifier(), make_batches())
    assert "Restor" not in capsys.readouterr().err  # (a fresh fit restores nothing)
    trainer(2).fit(TinyClassifier(), make_batches(), ckpt_path="last")
    assert (
        f"Restored all states from the checkpoint at {tmp_path / 'ckpt' / 'last'}\n"
        in capsys.readouterr().err
    )
    quiet = trainer(3)
    quiet.says_restored = False  # (a command-line tool that says it its own way)
    quiet.fit(TinyClassifier(), make_batches(), ckpt_path="last")
    assert "Restor" not in capsys.readouterr().err


def test_nothing_to_train_is_said_once_per_job_from_rank_0(tmp_path, monkeypatch):
    """A finished run fitted again under data parallel (the recipes' default 2 processes) printed the
    warning once per process; every rank is as far, and one warning tells the job."""
    import warnings

    from audiotrain.distributed import collectives

    trainer = Trainer(max_epochs=1, enable_progress_bar=False, default_root_dir=tmp_path)
    model = TinyClassifier()
    trainer.fit(model, make_batches())
    warned = []
    for rank in (0, 1):  # (as each rank of the job sees itself)
        monkeypatch.setattr(collectives, "is_main_process", lambda rank=rank: rank == 0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer.fit(model, make_batches())
        warned.append([str(w.message) for w in caught if "nothing to train" in str(w.message)])
    assert [len(messages) for messages in warned] == [1, 0]


def test_resuming_with_another_global_batch_says_how_to_keep_it(tmp_path):
    # Under a launcher batch_size is per process: a resume run without it (or with another count) trains on
    # another global batch than its checkpoint, which the run cannot notice by itself.
    import warnings

    from audiotrain import DataLoader

    x, y = make_data(32)
    data = list(zip(x, y, strict=True))
    first = Trainer(max_epochs=1, enable_progress_bar=False, default_root_dir=tmp_path)
    first.fit(TinyClassifier(), DataLoader(data, batch_size=4))
    saved = first.save_checkpoint(tmp_path / "epoch1")
    other = Trainer(max_epochs=2, enable_progress_bar=False, default_root_dir=tmp_path / "other")
    with pytest.warns(UserWarning, match=r"global batch of 4 \(1 process x batch_size 4\); this run's is 8"):
        other.fit(TinyClassifier(), DataLoader(data, batch_size=8), ckpt_path=str(saved))
    same = Trainer(max_epochs=2, enable_progress_bar=False, default_root_dir=tmp_path / "same")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        same.fit(TinyClassifier(), DataLoader(data, batch_size=4), ckpt_path=str(saved))
    assert not [w for w in caught if "global batch" in str(w.message)]


def test_resuming_under_fewer_processes_of_the_same_batch_size_says_the_global_batch_changed(tmp_path):
    # The case the warning exists for: a run saved by two processes of batch_size 4, resumed by a command
    # run without its launcher (one process of 4) trains on half its global batch.
    from audiotrain import DataLoader

    x, y = make_data(32)
    data = list(zip(x, y, strict=True))
    first = quiet_trainer(tmp_path, max_epochs=1)
    first.fit(TinyClassifier(), DataLoader(data, batch_size=4))
    saved = first.save_checkpoint(tmp_path / "epoch1")
    state_file = saved / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state["global_batch"] = {"world_size": 2, "batch_size": 4}  # (as two processes would have saved it)
    state_file.write_text(json.dumps(state))
    alone = quiet_trainer(tmp_path / "alone", max_epochs=2)
    with pytest.warns(
        UserWarning, match=r"global batch of 8 \(2 processes x batch_size 4\); this run's is 4 \(1 x 4\)"
    ):
        alone.fit(TinyClassifier(), DataLoader(data, batch_size=4), ckpt_path=str(saved))


def test_a_second_fit_of_another_module_object_says_it_takes_over_the_counters(tmp_path):
    trainer = quiet_trainer(tmp_path, max_epochs=1)
    module = TinyClassifier()
    trainer.fit(module, make_batches(32))
    trainer.max_epochs = 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(module, make_batches(32))  # the same object: it goes on, as in Lightning
    assert not [w for w in caught if "already trained another" in str(w.message)]
    trainer.max_epochs = 3
    with pytest.warns(
        UserWarning, match="already trained another module object.*takes over that run's counters"
    ):
        trainer.fit(TinyClassifier(), make_batches(32))
    assert trainer.current_epoch == 3


def test_a_second_fit_of_another_module_object_names_the_best_it_keeps_from_the_first(tmp_path):
    # An active-learning loop that fits a fresh model on one Trainer each round: the callbacks keep the first
    # model's best, so best_model_path (and ckpt_path="best") is that model's until the new one beats it.
    from audiotrain.train.callbacks import EarlyStopping, ModelCheckpoint

    checkpoint = ModelCheckpoint(monitor="val_loss")
    stopping = EarlyStopping(monitor="val_loss", patience=5)
    trainer = quiet_trainer(
        tmp_path, max_epochs=1, enable_checkpointing=True, callbacks=[checkpoint, stopping]
    )
    trainer.fit(TinyClassifier(), make_batches(32), make_batches(16))
    first_best = checkpoint.best_model_path
    assert first_best
    trainer.max_epochs = 2
    with pytest.warns(UserWarning, match="already trained another module object") as caught:
        trainer.fit(TinyClassifier(), make_batches(32), make_batches(16))
    said = next(str(w.message) for w in caught if "already trained another" in str(w.message))
    assert "ModelCheckpoint(monitor='val_loss') keeps the earlier model's best" in said
    assert first_best in said
    assert "EarlyStopping(monitor='val_loss') keeps its best and patience count" in said


# ------------------------------------------------------------------ loaders a Lightning user passes
def test_the_same_dataloader_for_training_and_validation_is_refused(tmp_path):
    from audiotrain import DataLoader

    x, y = np.zeros((8, 8), np.float32), np.zeros(8, np.int32)
    loader = DataLoader(list(zip(x, y, strict=True)), batch_size=4, shuffle=True)
    with pytest.raises(ValueError, match="same DataLoader object.*second DataLoader"):
        trainer(tmp_path, max_epochs=1).fit(TinyClassifier(), loader, loader)
    batches = make_batches(16)  # a plain list has no position to lose
    trainer(tmp_path, max_epochs=1).fit(TinyClassifier(), batches, batches)


@pytest.mark.parity
def test_torch_tensors_in_a_batch_point_to_audiotrains_dataloader(tmp_path):
    torch = require("torch")
    batch = (torch.zeros(4, 8), torch.zeros(4, dtype=torch.long))
    with pytest.raises(TypeError, match=r"batch\[0\] is a Tensor.*use audiotrain.DataLoader"):
        trainer(tmp_path, max_epochs=1).fit(TinyClassifier(), [batch])


def test_validate_and_test_finalize_the_loggers(tmp_path):
    logger = RecordingLogger()
    t = trainer(tmp_path, max_epochs=1, logger=logger)
    t.test(TinyClassifier(), make_batches(16))
    assert logger.status == "success"
    logger.status = None
    t.validate(TinyClassifier(), make_batches(16))
    assert logger.status == "success"


# ------------------------------------------------------------------ sanity check before training
class BrokenValidation(TinyClassifier):
    def validation_step(self, batch):
        return None  # a Lightning habit: validation_step returning nothing


class NoisyValidation(TinyClassifier):
    def validation_step(self, batch):
        x, y = batch
        return self.compute_loss((x + 0.1 * mx.random.normal(x.shape), y))


def test_a_broken_validation_step_fails_before_training(tmp_path):
    t = trainer(tmp_path, max_epochs=3)
    with pytest.raises(TypeError, match="validation_step"):
        t.fit(BrokenValidation(), make_batches(96), make_batches(16))
    assert t.global_step == 0
    t = trainer(tmp_path, max_epochs=1, num_sanity_val_steps=0)  # without the check: after the epoch
    with pytest.raises(TypeError, match="validation_step"):
        t.fit(BrokenValidation(), make_batches(96), make_batches(16))
    assert t.global_step == 6


def test_the_sanity_check_changes_nothing_in_the_run(tmp_path):
    runs = []
    for steps in (0, 2, -1):
        logger = RecordingLogger()
        t, module = fit(
            tmp_path,
            lambda: NoisyValidation(dropout=0.5),
            val=make_batches(32),
            max_epochs=2,
            logger=logger,
            num_sanity_val_steps=steps,
        )
        runs.append((weights(module), logger.metrics, t.sanity_checking))
    for other in runs[1:]:
        for key, value in runs[0][0].items():
            np.testing.assert_array_equal(other[0][key], value, err_msg=key)
        assert other[1] == runs[0][1] and other[2] is False


@pytest.mark.parametrize("bad", [-2, 1.5, True, "2"])
def test_bad_num_sanity_val_steps(tmp_path, bad):
    with pytest.raises(ValueError, match="num_sanity_val_steps"):
        trainer(tmp_path, max_epochs=1, num_sanity_val_steps=bad)


# ------------------------------------------------------------------ Lightning's names and defaults
def test_lightning_keyword_names_for_the_loaders(tmp_path):
    runs = []
    for call in ("positional", "lightning"):
        mx.random.seed(0)
        module, t = TinyClassifier(), trainer(tmp_path / call, max_epochs=2)
        if call == "positional":
            t.fit(module, make_batches(64), make_batches(16))
            scores = t.validate(module, make_batches(16)), t.test(module, make_batches(16))
        else:
            t.fit(module, train_dataloaders=make_batches(64), val_dataloaders=make_batches(16))
            scores = (
                t.validate(module, dataloaders=make_batches(16)),
                t.test(module, dataloaders=make_batches(16)),
            )
        runs.append((weights(module), t.history["val_loss"], scores))
    (w0, h0, s0), (w1, h1, s1) = runs
    assert all(np.array_equal(w0[k], w1[k]) for k in w0) and h0 == h1 and s0 == s1
    t = trainer(tmp_path, max_epochs=1)
    with pytest.raises(TypeError, match="got both train_loader and train_dataloaders="):
        t.fit(TinyClassifier(), make_batches(16), train_dataloaders=make_batches(16))
    with pytest.raises(
        TypeError, match=r"pass the training batches \(train_loader, train_dataloaders= or datamodule=\)"
    ):
        t.fit(TinyClassifier(), val_dataloaders=make_batches(16))
    with pytest.raises(
        TypeError, match=r"Trainer.validate: pass the batches \(val_loader, dataloaders= or datamodule=\)"
    ):
        t.validate(TinyClassifier())


def test_logger_true_writes_tensorboard_or_csv_under_default_root_dir(tmp_path, monkeypatch):
    from audiotrain.train.loggers import CSVLogger, TensorBoardLogger, tensorboard_logger

    t = trainer(tmp_path / "tb", max_steps=4, logger=True, log_every_n_steps=2)
    assert isinstance(t.logger, TensorBoardLogger)
    t.fit(TinyClassifier(), make_batches(64))
    assert t.logger.log_dir == tmp_path / "tb" / "version_0" and list(t.logger.log_dir.glob("events.*"))

    def no_writer():
        raise ImportError("no tensorboardX")

    # Patched where TensorBoardLogger looks it up (its own module), not on the package.
    monkeypatch.setattr(tensorboard_logger, "_summary_writer_class", no_writer)
    t = trainer(tmp_path / "csv", max_steps=4, logger=True, log_every_n_steps=2)
    assert isinstance(t.logger, CSVLogger)
    t.fit(TinyClassifier(), make_batches(64))
    rows = (t.logger.log_dir / "metrics.csv").read_text().splitlines()
    assert t.logger.log_dir == tmp_path / "csv" / "version_0" and len(rows) == 3  # header, steps 2 and 4


def test_hparams_logged_before_a_resumed_fit_go_to_the_checkpoints_run(tmp_path):
    from audiotrain.train.loggers import CSVLogger, LoggerWarning

    import yaml

    first = trainer(tmp_path, max_steps=3, logger=CSVLogger(tmp_path, name="run"), log_every_n_steps=1)
    first.fit(TinyClassifier(), make_batches(64))
    saved = first.save_checkpoint(tmp_path / "ckpt")
    # A user's habit: record the config on the logger, then resume.
    logger = CSVLogger(tmp_path, name="run")
    logger.log_hyperparams({"note": "resumed"})
    resumed = trainer(tmp_path, max_steps=6, logger=logger, log_every_n_steps=1)
    resumed.fit(TinyClassifier(), make_batches(64), ckpt_path=str(saved))
    assert logger.version == 0 and not (tmp_path / "run" / "version_1").exists()
    steps = [row.split(",")[0] for row in (logger.log_dir / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == ["1", "2", "3", "4", "5", "6"]
    hparams = yaml.safe_load((logger.log_dir / "hparams.yaml").read_text())
    assert hparams["note"] == "resumed" and hparams["trainer/max_steps"] == 6
    # A run that the user opened before the checkpoint loaded cannot be switched: said, not silent.
    early = CSVLogger(tmp_path, name="run")
    early.log_metrics({"x": 1.0}, step=0)
    with pytest.warns(
        LoggerWarning, match=r"checkpoint's run has version 0, but this logger had already started"
    ):
        trainer(tmp_path, max_steps=7, logger=early).fit(
            TinyClassifier(), make_batches(64), ckpt_path=str(saved)
        )


def test_fit_names_tmpdir_when_mlx_cannot_compile_its_kernels_there(tmp_path):
    """With TMPDIR on a folder it could not write, Trainer.fit raised MLX's "filesystem error: cannot create
    directories: Permission denied [<tmp>/mlx/0.32.4/cpu]" (a TMPDIR that is a file: "temp_directory_path: Not
    a directory"), which does not say that TMPDIR chose the folder."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "afile").write_text("")
    tests = Path(__file__).resolve().parent
    env = {k: v for k, v in os.environ.items() if k not in ("TMP", "TEMP", "TEMPDIR")}
    env["TMPDIR"] = str(tmp_path / "afile")
    env["PYTHONPATH"] = os.pathsep.join([str(tests.parent), str(tests), env.get("PYTHONPATH", "")])
    code = (
        "import audiotrain; import mlx.core as mx; from audiotrain import Trainer\n"
        "from audiotrain._system import KernelCompileError\n"
        "from tasks import TinyClassifier, make_batches\n"
        "mx.set_default_device(mx.cpu)\n"
        f"trainer = Trainer(max_epochs=1, default_root_dir={str(tmp_path / 'run')!r}, enable_progress_bar=False)\n"
        "try:\n    trainer.fit(TinyClassifier(), make_batches())\n"
        "except KernelCompileError as error:\n    print(error)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        f"TMPDIR={tmp_path / 'afile'}: MLX could not compile its CPU kernels in {tmp_path / 'afile'}/mlx/"
    ) and done.stdout.endswith("(Not a directory); set TMPDIR to a folder you can write to\n"), done.stdout


def test_the_short_epoch_warning_is_shown_once_for_identical_trials_of_a_process(tmp_path):
    """A sweep's second identical trial showed the short-epoch PossibleUserWarning again (Python shows a
    warning once per place): the first checkpoint's `platform.platform()` ran ``uname -p``, whose subprocess
    reset the process's registries of warnings shown. (A child process: this one has read its platform.)"""
    import subprocess
    import sys

    from child_processes import child_env

    code = (
        "import audiotrain; from audiotrain import Trainer; from audiotrain.train import CSVLogger\n"
        "from tasks import TinyClassifier, make_batches\n"
        "for trial in ('0', '1'):\n"
        "    trainer = Trainer(max_epochs=1, default_root_dir=trial, logger=CSVLogger(trial),\n"
        "                      enable_progress_bar=False, enable_model_summary=False)\n"
        "    trainer.fit(TinyClassifier(), make_batches())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=child_env(tests=True), capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("PossibleUserWarning: Trainer.fit: an epoch has 6 training batches") == 1, (
        done.stderr
    )


def test_an_epoch_shorter_than_the_logging_interval_warns_as_lightning_does(tmp_path):
    from tasks import RecordingLogger

    t = Trainer(
        max_epochs=1, logger=RecordingLogger(), enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False, default_root_dir=tmp_path,
    )  # fmt: skip
    with pytest.warns(
        UserWarning, match=r"an epoch has 2 training batches, fewer than .*log_every_n_steps=50"
    ) as seen:
        t.fit(TinyClassifier(), make_batches(32))
    assert seen[0].filename == __file__  # the caller's line (under create_trainer it named declarative.py)


def test_an_epoch_of_fewer_optimizer_steps_than_the_logging_interval_warns_under_accumulation(tmp_path):
    """log_every_n_steps counts optimizer steps (Lightning's _batches_that_stepped): 6 batches accumulated 4
    at a time are 2 steps an epoch, fewer than 3, so no step was ever logged, without a word (the warning,
    as Lightning's, compared batches)."""
    from tasks import RecordingLogger

    t = Trainer(
        max_epochs=1, logger=RecordingLogger(), enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False, default_root_dir=tmp_path, accumulate_grad_batches=4, log_every_n_steps=3,
    )  # fmt: skip
    with pytest.warns(UserWarning, match="fewer than the logging interval") as seen:
        t.fit(TinyClassifier(), make_batches(96))
    message = next(str(w.message) for w in seen if "logging interval" in str(w.message))
    assert "an epoch has 6 training batches (2 optimizer steps with accumulate_grad_batches=4)" in message
    assert re.match(SHORT_EPOCH_WARNING, message)  # (the recipes' filter still matches it)


def test_a_model_whose_training_exceeds_the_memory_limit_is_refused_before_any_step(tmp_path, monkeypatch):
    # Under `ulimit -v 4000000` a 400 M-parameter model segfaulted (exit 139) in its first step without a
    # word. Here the limit is made small instead (no gigabytes allocated): the bound of a hidden layer of
    # 1000 (12,003 float32 weights, their gradients, AdamW's two moments) is 192,060 bytes.
    from audiotrain.train import memory

    limit = (100_000, "left under this process's ulimit -v limit of 0.1 GB")
    monkeypatch.setattr(memory, "training_memory_limit", lambda mapped_already=0: limit)
    counter = Counter()
    t = trainer(tmp_path, max_epochs=1, enable_checkpointing=True, callbacks=[counter])
    with pytest.raises(MemoryError) as refused:
        t.fit(TinyClassifier(hidden=1000), make_batches())
    assert str(refused.value) == (
        "Trainer.fit: training TinyClassifier needs at least 192.1 kB (its weights 48.0 kB, their gradients "
        "48.0 kB and AdamW's state 96.0 kB; activations come on top), more than the 100.0 kB left under this "
        "process's ulimit -v limit of 0.1 GB; choose a smaller model, train in precision='bf16-true' (half "
        "the bytes of float32 weights, gradients and state), or raise that limit"
    )
    assert t.global_step == 0 and "on_train_batch_start" not in counter.calls
    assert not (tmp_path / "checkpoints").exists()
    # Within the limit (the bound exactly) nothing changes: it trains, and says nothing of memory.
    monkeypatch.setattr(memory, "training_memory_limit", lambda mapped_already=0: (192_060, limit[1]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t, _ = fit(tmp_path / "fits", TinyClassifier(hidden=1000), max_epochs=1)
    assert t.global_step == 6
    assert not [w for w in caught if "memory" in str(w.message)]
    # Past MLX's own limit alone (soft: MLX allocates anyway, a Mac swaps) it is said, and the fit trains.
    monkeypatch.setattr(
        memory, "training_memory_limit", lambda mapped_already=0: (100_000, memory.MLX_MEMORY_LIMIT)
    )
    with pytest.warns(
        UserWarning, match=r"needs at least 192.1 kB .* MLX may use on this machine: it may swap"
    ):
        t, _ = fit(tmp_path / "soft", TinyClassifier(hidden=1000), max_epochs=1)
    assert t.global_step == 6


def test_a_fit_past_a_cgroup_limit_above_mlxs_own_is_refused_not_only_warned_of(tmp_path, monkeypatch):
    # MLX's own limit is soft (a warning), a cgroup's is not (the OOM killer): a need past both, where the
    # cgroup allows more than MLX's limit, was only warned of, then the fit ran into the OOM killer.
    from pathlib import Path

    from audiotrain.train import memory

    monkeypatch.setattr(memory.mx, "get_memory_limit", lambda: 100_000)
    cgroup = (150_000, Path("/sys/fs/cgroup/job/memory.max"))
    monkeypatch.setattr(memory._cgroup, "cgroup_memory_limit", lambda: cgroup)
    t = trainer(tmp_path, max_epochs=1)
    with pytest.raises(
        MemoryError, match=r"needs at least 192.1 kB .* more than the 150.0 kB this process's cgroup"
    ):
        t.fit(TinyClassifier(hidden=1000), make_batches())
    assert t.global_step == 0


def test_a_trainer_on_a_server_whose_tmp_mlx_is_another_users_compiles_in_this_users_own_folder(
    monkeypatch, tmp_path, capsys
):
    """Python API users (create_trainer, Trainer) on a shared server stopped at their first step, where MLX
    could not write its kernels into another user's /tmp/mlx: a Trainer now points MLX at their own folder."""
    from tests.other_users import another_users_mlx_folder

    tmp = another_users_mlx_folder(monkeypatch, tmp_path / "tmp")
    Trainer(max_steps=1)
    own = tmp / f"mlx-{os.geteuid()}"
    assert os.environ.get("TMPDIR") == str(own) and own.is_dir()
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("MLX's kernel folder ") and f"kept in {own} instead" in line


def test_default_root_dir_given_with_a_tilde_reads_back_as_the_home_folder(tmp_path, monkeypatch):
    """Trainer(default_root_dir="~/runs") saved into the home folder, but trainer.default_root_dir read back
    Path('~/runs'): a user's os.path.join(trainer.default_root_dir, "preds.csv") then wrote into a folder
    named `~` in the working folder. Lightning's property gives the path with `~` expanded."""
    monkeypatch.setenv("HOME", str(tmp_path))
    assert Trainer(default_root_dir="~/runs").default_root_dir == tmp_path / "runs"


def test_warnings_as_errors_can_ignore_the_short_epoch_advice_by_its_category(tmp_path):
    """A test suite run with ``filterwarnings = error`` fitting a few batches with a logger failed on the
    short-epoch warning, a plain UserWarning: only its message could be filtered. As Lightning's, its category
    is ``PossibleUserWarning`` (``ignore::audiotrain.PossibleUserWarning``), still a UserWarning."""
    import audiotrain

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=audiotrain.PossibleUserWarning)
        fit(tmp_path, max_epochs=1, log_every_n_steps=50, logger=RecordingLogger())  # 6 batches an epoch
    with pytest.warns(UserWarning, match="fewer than the logging interval") as caught:
        fit(tmp_path / "again", max_epochs=1, log_every_n_steps=50, logger=RecordingLogger())
    categories = [w.category for w in caught if "logging interval" in str(w.message)]
    assert categories == [audiotrain.PossibleUserWarning]


class TiedLM(TrainModule):
    """An embedding and an output projection that share one weight: by array (torch's way), or by module."""

    def __init__(self, by_array: bool):
        super().__init__()
        self.emb = nn.Embedding(6, 4)
        if by_array:
            self.out = nn.Linear(4, 6, bias=False)
            self.out.weight = self.emb.weight

    def compute_loss(self, batch):
        x, y = batch
        h = self.emb(x)
        logits = self.out(h) if "out" in self else self.emb.as_linear(h)
        return mx.mean(nn.losses.cross_entropy(logits, y)), {}

    def configure_optimizers(self):
        return OptimizerConfig(optim.SGD(learning_rate=0.5))


@pytest.mark.parametrize("embedding_frozen", [False, True])
def test_a_weight_array_set_on_two_modules_is_refused_naming_both(tmp_path, embedding_frozen):
    # MLX trained `emb.weight` and `out.weight` as two parameters: after one step they differed, silently
    # (with the embedding frozen, as torch's tie freezes both, `out.weight` alone moved).
    model = TiedLM(by_array=True)
    if embedding_frozen:
        model.emb.freeze()
    batches = [(mx.array([[0, 1, 2]]), mx.array([[3, 4, 5]]))]
    with pytest.raises(ValueError, match=r"'emb\.weight' = 'out\.weight'.*as_linear"):
        quiet_trainer(tmp_path, max_steps=1).fit(model, batches)


def test_one_module_used_twice_trains_one_weight_with_the_summed_gradient(tmp_path):
    class Twice(TrainModule):
        def __init__(self):
            super().__init__()
            self.first = nn.Linear(3, 3, bias=False)
            self.second = self.first  # the same layer by a second name: a tie that MLX keeps

        def compute_loss(self, batch):
            return mx.mean((self.second(self.first(batch[0])) - batch[1]) ** 2), {}

        def configure_optimizers(self):
            return OptimizerConfig(optim.SGD(learning_rate=0.5))

    model = Twice()
    batch = (mx.arange(6, dtype=mx.float32).reshape(2, 3) / 6, mx.ones((2, 3)))
    w = model.first.weight

    def loss(w):
        return mx.mean((batch[0] @ w.T @ w.T - batch[1]) ** 2)

    expected = w - 0.5 * mx.grad(loss)(w)  # both uses' gradients, summed, as torch's autograd gives
    quiet_trainer(tmp_path, max_steps=1, enable_model_summary=False).fit(model, [batch])
    assert model.second is model.first
    np.testing.assert_allclose(np.array(model.first.weight), np.array(expected), rtol=1e-5, atol=1e-6)


def test_layers_in_dicts_keyed_by_ints_or_dotted_names_train(tmp_path):
    class Heads(TrainModule):
        def __init__(self):
            super().__init__()
            self.heads = {0: nn.Linear(3, 3), "a.b": [nn.Linear(3, 3)]}

        def compute_loss(self, batch):
            h = self.heads["a.b"][0](self.heads[0](batch[0]))
            return mx.mean((h - batch[1]) ** 2), {}

        def configure_optimizers(self):
            return OptimizerConfig(optim.SGD(learning_rate=0.5))

    model = Heads()
    before = np.array(model.heads["a.b"][0].weight)
    batch = (mx.ones((2, 3)), mx.zeros((2, 3)))
    quiet_trainer(tmp_path, max_steps=1, enable_model_summary=False).fit(model, [batch])
    assert not np.allclose(np.array(model.heads["a.b"][0].weight), before)


class TupleHeads(TrainModule):
    """Two layers in a tuple, which MLX's parameters() leaves out (lists and dicts it takes)."""

    def __init__(self, name: str = "heads"):
        super().__init__()
        self.body = nn.Linear(3, 3)
        setattr(self, name, (nn.Linear(3, 3), nn.Linear(3, 3)))
        self.name = name

    def compute_loss(self, batch):
        h = self.body(batch[0])
        for head in getattr(self, self.name):
            h = head(h)
        return mx.mean((h - batch[1]) ** 2), {}

    def configure_optimizers(self):
        return OptimizerConfig(optim.SGD(learning_rate=0.5))


def test_layers_in_a_tuple_are_warned_of_as_never_trained_or_saved(tmp_path):
    # The heads in the tuple kept their initial weights and were missing from model.safetensors, silently.
    batch = (mx.ones((2, 3)), mx.zeros((2, 3)))
    with pytest.warns(UserWarning, match=r"'heads' is a tuple .* not trained, saved"):
        quiet_trainer(tmp_path, max_steps=1, enable_model_summary=False).fit(TupleHeads(), [batch])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # kept out on purpose: an underscore name says so
        quiet_trainer(tmp_path, max_steps=1, enable_model_summary=False).fit(TupleHeads("_heads"), [batch])


def test_init_module_is_lightnings_context_for_creating_the_module(tmp_path):
    """``with trainer.init_module(): model = MyModel()`` (Lightning 2.6.6's way to create the weights on
    the device, in a "-true" precision's dtype) raised AttributeError. MLX arrays are in unified memory and
    each stage casts the weights as it starts: the same weights as Lightning's once a stage runs."""
    t = trainer(tmp_path, precision="bf16-true")
    with t.init_module():
        module = TinyClassifier()
    with t.init_module(empty_init=True):
        TinyClassifier()
    t.predict(module, [b[0] for b in make_batches(16)])
    assert module.fc1.weight.dtype == mx.bfloat16
    with pytest.raises(TypeError, match=r"init_module\(empty_init='yes'\): expected True, False or None"):
        with t.init_module(empty_init="yes"):
            pass
