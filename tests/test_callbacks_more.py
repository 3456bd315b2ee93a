"""LambdaCallback, Timer, TQDMProgressBar, OnExceptionCheckpoint and DeviceStatsMonitor from the user's side:
Lightning's names and arguments, the errors a wrong argument gets, and a resume where one keeps state."""

import datetime
import re

from audiotrain.train import (
    Callback,
    DeviceStatsMonitor,
    LambdaCallback,
    OnExceptionCheckpoint,
    ProgressBar,
    Timer,
    TQDMProgressBar,
)

import mlx.core as mx
import pytest
from tasks import RecordingLogger, TinyClassifier, make_batches, make_data, quiet_trainer, weights


def test_lambda_callback_calls_each_hook_with_its_arguments(tmp_path):
    seen = []
    cb = LambdaCallback(
        on_train_epoch_end=lambda trainer, module: seen.append(("epoch_end", trainer.current_epoch)),
        on_train_batch_end=lambda trainer, module, outputs, batch, batch_idx: seen.append(
            ("batch", batch_idx)
        ),
        setup=lambda trainer, module, stage: seen.append(("setup", stage)),
    )
    quiet_trainer(tmp_path, max_epochs=2, compile=False, callbacks=[cb]).fit(
        TinyClassifier(), make_batches(32)
    )
    assert seen == [
        ("setup", "fit"),
        ("batch", 0),
        ("batch", 1),
        ("epoch_end", 0),
        ("batch", 0),
        ("batch", 1),
        ("epoch_end", 1),
    ]


def test_lambda_callback_refuses_an_unknown_hook_naming_close_matches():
    with pytest.raises(
        TypeError, match=r"'on_train_epoch_ends' is not a Callback hook; did you mean on_train_epoch_end"
    ):
        LambdaCallback(on_train_epoch_ends=lambda t, m: None)
    with pytest.raises(TypeError, match="'frobnicate' is not a Callback hook; the hooks: on_exception"):
        LambdaCallback(frobnicate=lambda t, m: None)
    with pytest.raises(TypeError, match="on_after_backward.*compiled step"):
        LambdaCallback(on_after_backward=lambda t, m: None)


def test_lambda_callback_refuses_a_value_that_is_not_callable():
    with pytest.raises(
        TypeError, match=r"LambdaCallback\(on_fit_start=...\): expected a function.*got int 3"
    ):
        LambdaCallback(on_fit_start=3)


def test_lambda_callback_takes_none_as_no_function_for_that_hook(tmp_path):
    """Lightning's LambdaCallback has every hook as a keyword defaulting to None, and None leaves the hook
    as it is: `LambdaCallback(on_fit_start=fn if verbose else None)` is Lightning code (2.6.6 takes None
    for `on_before_backward` too, which runs nothing). A name that is no hook is still refused."""
    seen = []
    cb = LambdaCallback(
        on_fit_start=None,
        on_after_backward=None,
        on_train_epoch_end=lambda trainer, module: seen.append(trainer.current_epoch),
    )
    assert "on_fit_start" not in vars(cb) and "on_after_backward" not in vars(cb)
    quiet_trainer(tmp_path, max_epochs=2, callbacks=[cb]).fit(TinyClassifier(), make_batches(32))
    assert seen == [0, 1]
    with pytest.raises(TypeError, match="'on_fit_starts' is not a Callback hook"):
        LambdaCallback(on_fit_starts=None)


def test_lambda_callback_refuses_a_function_that_cannot_take_its_hooks_arguments(tmp_path):
    with pytest.raises(
        TypeError,
        match=r"LambdaCallback\(on_train_batch_end=...\): a function of \(t, m\) cannot take the hook's 5 "
        r"arguments: it is called as on_train_batch_end\(trainer, module, outputs, batch, batch_idx\)",
    ):
        LambdaCallback(on_train_batch_end=lambda t, m: None)
    with pytest.raises(TypeError, match=r"LambdaCallback\(setup=...\).*missing a required argument: 'extra'"):
        LambdaCallback(setup=lambda trainer, module, stage, extra: None)
    # *args, an optional parameter (on_predict_batch_end's dataloader_idx is not passed) are taken, and a
    # function without the hook's optional dataloader_idx
    LambdaCallback(
        on_train_batch_end=lambda *args: None, on_predict_batch_end=lambda t, m, o, b, i, d=0: None
    )
    LambdaCallback(
        on_predict_batch_start=lambda trainer, module, batch, batch_idx: None,
        on_predict_batch_end=lambda trainer, module, outputs, batch, batch_idx: None,
    )


def test_lambda_callback_names_the_hook_when_a_function_it_cannot_inspect_fails(tmp_path):
    class Opaque:
        __signature__ = "not inspectable"  # (inspect.signature raises: the call is checked instead)

        def __call__(self, trainer, module):
            return None

    t = quiet_trainer(
        tmp_path, max_epochs=1, compile=False, callbacks=[LambdaCallback(on_train_batch_end=Opaque())]
    )
    with pytest.raises(
        TypeError,
        match=r"LambdaCallback\(on_train_batch_end=...\): calling .*Opaque.* as "
        r"on_train_batch_end\(trainer, module, outputs, batch, batch_idx\) raised TypeError",
    ):
        t.fit(TinyClassifier(), make_batches(16))


def test_lambda_callback_names_the_hook_when_a_function_whose_signature_says_nothing_fails(tmp_path):
    """Python 3.13 reports mx.abs's signature as ``(*args, **kwargs)`` (3.10-3.12 cannot inspect it): it
    was taken as able to take the hook's arguments, and its failed call was a bare TypeError."""
    for hook in (mx.abs, lambda *args, **kwargs: mx.abs(*args)):
        t = quiet_trainer(
            tmp_path, max_epochs=1, compile=False, callbacks=[LambdaCallback(on_train_epoch_end=hook)]
        )
        with pytest.raises(
            TypeError,
            match=r"LambdaCallback\(on_train_epoch_end=...\): calling .* as "
            r"on_train_epoch_end\(trainer, module\) raised TypeError",
        ):
            t.fit(TinyClassifier(), make_batches(16))


# ---- A callback of the user's that raises ---------------------------------------------------------
class TrialPruned(Exception):
    """Optuna's pruning exception, as a sweep's pruning callback raises it."""


class PruneAtFirstValidation(Callback):
    def on_validation_end(self, trainer, module):
        raise TrialPruned("pruned at epoch 0")


class ReadsAMissingMetric(Callback):
    def on_train_epoch_end(self, trainer, module):
        trainer.callback_metrics["val_acc"]  # (the module logs it as val_accuracy)


class FailsToSave(Callback):
    def on_save_checkpoint(self, trainer, module, checkpoint):
        checkpoint["mine"]["count"] += 1  # (nothing put it there)


@pytest.mark.parametrize(
    "callback, error, hook",
    [
        (PruneAtFirstValidation(), TrialPruned, "PruneAtFirstValidation.on_validation_end"),
        (ReadsAMissingMetric(), KeyError, "ReadsAMissingMetric.on_train_epoch_end"),
        # (called in ModelCheckpoint.on_train_epoch_end's save: the hook that failed is named, alone)
        (FailsToSave(), KeyError, "FailsToSave.on_save_checkpoint"),
    ],
)
def test_an_error_a_users_callback_raises_names_the_callback_and_its_hook(tmp_path, callback, error, hook):
    """A sweep's callback raising in a hook (a KeyError 'val_acc' read from callback_metrics) was
    reported with neither its callback nor its hook: the error passes unchanged (``except TrialPruned``
    catches it), with a note naming both."""
    t = quiet_trainer(tmp_path, max_epochs=2, compile=False, callbacks=[callback], enable_checkpointing=True)
    with pytest.raises(error) as raised:
        t.fit(TinyClassifier(), make_batches(32), make_batches(16, seed=1))
    assert getattr(raised.value, "__notes__", None) == [f"(raised while the Trainer called {hook})"]
    assert t.current_epoch == 0


def test_an_error_of_the_librarys_own_callback_hook_gets_no_note_below_its_message(tmp_path):
    """ModelCheckpoint.setup's FileNotFoundError in a deleted current folder names its cause on its last
    line; the hook's note below it pushed that off the end of the report (tests/test_user_environment.py
    runs that case whole). A user's override of the same hook is named."""
    from audiotrain.train.callback_list import name_the_hook
    from audiotrain.train.callbacks import ModelCheckpoint

    class Mine(ModelCheckpoint):
        def setup(self, trainer, pl_module, stage):
            raise KeyError("val_acc")

    library, users = FileNotFoundError("the current directory no longer exists"), KeyError("val_acc")
    name_the_hook(library, ModelCheckpoint(dirpath=tmp_path), "setup")
    name_the_hook(users, Mine(dirpath=tmp_path), "setup")
    assert getattr(library, "__notes__", None) is None
    assert users.__notes__ == ["(raised while the Trainer called Mine.setup)"]


# ---- Timer -------------------------------------------------------------------------------------------
class FakeClock:
    """`time.monotonic` for the Timer, which a LambdaCallback before it advances by `per_batch` seconds
    after each training batch."""

    def __init__(self, monkeypatch, per_batch=10.0):
        from audiotrain.train.callbacks import timer

        self.now, self.per_batch = 1000.0, per_batch
        monkeypatch.setattr(timer, "_clock", lambda: self.now)

    def callback(self):
        def tick(trainer, module, outputs, batch, batch_idx):
            self.now += self.per_batch

        return LambdaCallback(on_train_batch_end=tick)


def test_timer_stops_training_once_its_duration_has_elapsed(tmp_path, monkeypatch):
    clock = FakeClock(monkeypatch)
    timer = Timer(duration="00:00:00:25", verbose=False)  # the third batch's end is 30 s in
    t = quiet_trainer(tmp_path, max_epochs=5, compile=False, callbacks=[clock.callback(), timer])
    t.fit(TinyClassifier(), make_batches(64))
    assert t.global_step == 3
    assert timer.time_elapsed("train") == 30.0
    assert timer.time_remaining() == -5.0
    assert timer.start_time("train") == 1000.0 and timer.end_time("train") == 1030.0


def test_timer_checks_at_epoch_ends_with_interval_epoch(tmp_path, monkeypatch, capsys):
    clock = FakeClock(monkeypatch, per_batch=10.2)  # (the message shows whole seconds, as Lightning's)
    timer = Timer(duration={"seconds": 25}, interval="epoch")
    t = quiet_trainer(tmp_path, max_epochs=5, compile=False, callbacks=[clock.callback(), timer])
    t.fit(TinyClassifier(), make_batches(64))  # 4 batches an epoch: the first epoch ends 40.8 s in
    assert t.global_step == 4 and t.current_epoch == 1
    assert (
        "Time limit reached. Elapsed time is 0:00:40. Signaling Trainer to stop." in capsys.readouterr().err
    )


def test_timer_waits_for_min_epochs_as_every_stop_request(tmp_path, monkeypatch, capsys):
    clock = FakeClock(monkeypatch)
    timer = Timer(duration=datetime.timedelta(seconds=5))
    t = quiet_trainer(
        tmp_path, max_epochs=5, min_epochs=2, compile=False, callbacks=[clock.callback(), timer]
    )
    t.fit(TinyClassifier(), make_batches(32))
    assert t.current_epoch == 2 and t.global_step == 4
    # (said once, not again at each batch that min_epochs keeps training)
    assert capsys.readouterr().err.count("Time limit reached") == 1


def test_timer_times_validation_and_test(tmp_path, monkeypatch):
    clock = FakeClock(monkeypatch)
    timer = Timer()
    t = quiet_trainer(tmp_path, max_epochs=1, compile=False, callbacks=[clock.callback(), timer])
    model = TinyClassifier()
    t.fit(model, make_batches(32), make_batches(16, seed=1))
    assert timer.time_elapsed("train") == 20.0 and timer.time_elapsed("validate") == 0.0
    assert timer.time_remaining() is None
    assert timer.start_time("test") is None and timer.time_elapsed("test") == 0.0
    t.test(model, make_batches(16, seed=1))
    assert timer.end_time("test") == timer.start_time("test") == 1020.0
    t.predict(model, make_batches(16, seed=1))
    assert timer.end_time("predict") == timer.start_time("predict") == 1020.0
    clock.now += 100.0
    assert timer.time_elapsed("predict") == 0.0  # (ended: the clock moving on adds nothing)


def test_timer_times_each_validation_afresh(tmp_path, monkeypatch):
    # Each validation of a fit runs 3 s (a LambdaCallback after the Timer advances the clock): while one
    # runs it has no end time and its time counts from its own start, and after the fit its time is kept
    clock = FakeClock(monkeypatch)
    timer = Timer()
    seen = []

    def validation_batch(trainer, module, outputs, batch, batch_idx):
        clock.now += 3.0
        seen.append((timer.end_time("validate"), timer.time_elapsed("validate")))

    validating = LambdaCallback(on_validation_batch_end=validation_batch)
    t = quiet_trainer(tmp_path, max_epochs=2, compile=False, callbacks=[clock.callback(), timer, validating])
    t.fit(TinyClassifier(), make_batches(32), make_batches(16, seed=1))
    assert seen == [(None, 3.0), (None, 3.0)]
    assert timer.end_time("validate") == 1046.0  # (2 batches of 10 s, 3 s, 2 batches, 3 s)
    clock.now += 100.0
    assert timer.time_elapsed("validate") == 3.0


def test_timer_carries_training_time_over_a_resume(tmp_path, monkeypatch):
    clock = FakeClock(monkeypatch)
    kw = dict(compile=False, enable_checkpointing=True)
    t = quiet_trainer(
        tmp_path, max_epochs=1, callbacks=[clock.callback(), Timer(duration="00:00:01:00")], **kw
    )
    t.fit(TinyClassifier(), make_batches(64))  # 40 s
    timer = Timer(duration="00:00:01:00", verbose=False)
    t2 = quiet_trainer(tmp_path, max_epochs=5, callbacks=[clock.callback(), timer], **kw)
    t2.fit(TinyClassifier(), make_batches(64), ckpt_path="last")
    assert timer.time_elapsed("train") == 60.0  # 40 s before the resume and 2 batches after it
    assert timer.time_elapsed("validate") == timer.time_elapsed("test") == 0.0  # (training's seconds alone)
    assert t2.global_step == 6


def test_timer_stops_a_fit_resumed_past_its_duration_at_once(tmp_path, monkeypatch):
    clock = FakeClock(monkeypatch)
    kw = dict(compile=False, enable_checkpointing=True)
    t = quiet_trainer(tmp_path, max_epochs=1, callbacks=[clock.callback(), Timer()], **kw)
    t.fit(TinyClassifier(), make_batches(64))  # 40 s
    t2 = quiet_trainer(tmp_path, max_epochs=5, callbacks=[clock.callback(), Timer("00:00:00:30")], **kw)
    with pytest.warns(UserWarning, match="nothing to train, a stop was asked before the first step.*Timer"):
        t2.fit(TinyClassifier(), make_batches(64), ckpt_path="last")
    assert t2.global_step == 4


def test_timer_saves_and_counts_down_from_the_training_time_it_resumed_from():
    timer = Timer(duration="00:00:01:00")
    timer.load_state_dict({"time_elapsed": {"train": 100.0, "validate": 5.0, "test": 0.0, "predict": 0.0}})
    # A checkpoint of the resumed fit keeps the earlier runs' time: a second resume does not forget them
    assert timer.state_dict()["time_elapsed"]["train"] == 100.0
    assert timer.time_remaining("train") == -40.0
    assert timer.time_remaining("validate") == 60.0  # (each stage's own time; validate's starts again)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"duration": "1:00"}, r"Timer\(duration='1:00'\): expected 'DD:HH:MM:SS'"),
        ({"duration": 60}, r"Timer\(duration=60\): expected 'DD:HH:MM:SS'"),
        ({"duration": {"minutes": 0}}, r"Timer\(duration=\{'minutes': 0\}\): expected a positive duration"),
        ({"duration": {"minuts": 1}}, r"Timer\(duration=\{'minuts': 1\}\): expected"),
        ({"interval": "batch"}, r"Timer\(interval='batch'\): expected 'step' or 'epoch'"),
        ({"verbose": "yes"}, r"Timer\(verbose='yes'\): expected True or False"),
    ],
)
def test_timer_refuses_a_wrong_argument_naming_it(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Timer(**kwargs)


def test_timer_refuses_an_unknown_stage():
    with pytest.raises(ValueError, match=r"Timer: stage must be one of 'train', .*got 'training'"):
        Timer().time_elapsed("training")


# ---- RichProgressBar, RichModelSummary: not provided, and saying what to use ------------------------------
def test_lightnings_rich_callbacks_import_and_name_their_plain_twins_when_made():
    # Lightning 2.6.6 offers both in lightning.pytorch.callbacks; here the import stopped at "ImportError:
    # cannot import name 'RichProgressBar' from 'audiotrain.callbacks'", naming nothing to use instead.
    from audiotrain.callbacks import RichModelSummary, RichProgressBar

    with pytest.raises(NotImplementedError, match=r"RichProgressBar\(leave=True\) is not provided") as bar:
        RichProgressBar(leave=True)
    assert "TQDMProgressBar(refresh_rate=1, leave=False)" in str(bar.value)
    assert "enable_progress_bar=False" in str(bar.value)
    with pytest.raises(NotImplementedError, match=r"RichModelSummary\(max_depth=2\)") as summary:
        RichModelSummary(2)
    assert "ModelSummary(max_depth=2)" in str(summary.value)


# ---- TQDMProgressBar ---------------------------------------------------------------------------------
def test_tqdm_progress_bar_is_the_progress_bar_under_lightnings_name(tmp_path, monkeypatch):
    from audiotrain.train import progress

    made = []

    class Recording(progress.tqdm):
        def __init__(self, *args, **kwargs):
            made.append(kwargs)
            super().__init__(*args, **{**kwargs, "disable": True})

    monkeypatch.setattr(progress, "tqdm", Recording)
    bar = TQDMProgressBar(refresh_rate=2, process_position=3, leave=True)
    bar.plain = False  # (bars, as in a terminal)
    t = quiet_trainer(tmp_path, max_epochs=1, compile=False, enable_progress_bar=True, callbacks=[bar])
    t.fit(TinyClassifier(), make_batches(32), make_batches(16, seed=1))
    assert [cb for cb in t.callbacks if isinstance(cb, ProgressBar)] == [bar]  # no second, default bar
    assert bar.refresh_rate == 2 and bar.process_position == 3
    train, val = made
    assert (train["position"], train["leave"], val["position"], val["leave"]) == (3, True, 4, False)
    assert TQDMProgressBar()._leave is False  # Lightning's default


def test_tqdm_progress_bar_conflicts_with_enable_progress_bar_false(tmp_path):
    with pytest.raises(ValueError, match=r"enable_progress_bar=False\) conflicts with the TQDMProgressBar"):
        quiet_trainer(tmp_path, enable_progress_bar=False, callbacks=[TQDMProgressBar()])


@pytest.mark.parametrize("second", [TQDMProgressBar, ProgressBar])
def test_a_second_progress_bar_is_refused_naming_both(tmp_path, second):
    # Refused when the Trainer is made, on every rank (a check at fit start ran on rank 0 alone, the
    # others having dropped their bars: one process failing while the others went on).
    with pytest.raises(
        ValueError,
        match=rf"Trainer\(callbacks=\[...\]\): 2 progress bars \(TQDMProgressBar\(refresh_rate=5\), "
        rf"{second.__name__}\(refresh_rate=2\)\): only one is supported",
    ):
        quiet_trainer(
            tmp_path,
            enable_progress_bar=True,
            callbacks=[TQDMProgressBar(refresh_rate=5), second(refresh_rate=2)],
        )


def test_a_modules_progress_bar_replaces_the_trainers_whatever_its_class(tmp_path):
    """A TQDMProgressBar from configure_callbacks() ran beside the Trainer's default ProgressBar (two bars):
    a module's callbacks replaced only the Trainer's callbacks of exactly their class."""

    class WithBar(TinyClassifier):
        def configure_callbacks(self):
            return [TQDMProgressBar(refresh_rate=3)]

    t = quiet_trainer(tmp_path, max_epochs=1, compile=False, enable_progress_bar=True)
    assert [type(cb) for cb in t.callbacks].count(ProgressBar) == 1
    t.fit(WithBar(), make_batches(16))
    bars = [cb for cb in t.callbacks if isinstance(cb, ProgressBar)]
    assert [type(bar) for bar in bars] == [TQDMProgressBar] and bars[0].refresh_rate == 3

    class TwoBars(TinyClassifier):
        def configure_callbacks(self):
            return [TQDMProgressBar(), ProgressBar()]

    with pytest.raises(ValueError, match=r"TwoBars.configure_callbacks\(\): 2 progress bars"):
        quiet_trainer(tmp_path, max_epochs=1, compile=False).fit(TwoBars(), make_batches(16))


def test_a_modules_progress_bar_is_dropped_where_the_trainer_shows_none(tmp_path):
    class WithBar(TinyClassifier):
        def configure_callbacks(self):
            return [TQDMProgressBar(refresh_rate=1)]

    t = quiet_trainer(tmp_path, max_epochs=1, compile=False, enable_progress_bar=False)
    t.fit(WithBar(), make_batches(16))
    assert not any(isinstance(cb, ProgressBar) for cb in t.callbacks)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"refresh_rate": 0}, r"refresh_rate=0\).*Trainer\(enable_progress_bar=False\)"),
        ({"refresh_rate": 1.5}, r"TQDMProgressBar\(refresh_rate=1.5\): expected an int >= 1"),
        ({"refresh_rate": True}, r"TQDMProgressBar\(refresh_rate=True\): expected an int >= 1"),
        ({"process_position": -1}, r"TQDMProgressBar\(process_position=-1\): expected an int >= 0"),
        ({"leave": None}, r"TQDMProgressBar\(leave=None\): expected True or False"),
    ],
)
def test_tqdm_progress_bar_refuses_a_wrong_argument_naming_it(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TQDMProgressBar(**kwargs)


# ---- DeviceStatsMonitor ------------------------------------------------------------------------------
def fit_with_device_stats(tmp_path, monitor, train, val, **trainer_kwargs):
    """One epoch of a TinyClassifier with `monitor`: the Trainer and its RecordingLogger."""
    logger = RecordingLogger()
    t = quiet_trainer(
        tmp_path, max_epochs=1, compile=False, logger=logger, callbacks=[monitor], **trainer_kwargs
    )
    t.fit(TinyClassifier(), train, val)
    return t, logger


def test_device_stats_monitor_logs_the_process_cpu_stats_at_logging_steps(tmp_path):
    _, logger = fit_with_device_stats(
        tmp_path, DeviceStatsMonitor(), make_batches(64), make_batches(32, seed=1), log_every_n_steps=2
    )
    logged = {(step, k): v for step, m in logger.metrics for k, v in m.items() if k.startswith("DeviceStats")}
    for hook in ("on_train_batch_start", "on_train_batch_end"):
        assert sorted(k for s, k in logged if s == 2 and hook in k) == [
            f"DeviceStatsMonitor.{hook}/{stat}"
            for stat in (
                "active_memory",
                "cache_memory",
                "cpu_process_percent",
                "cpu_rss_bytes",
                "peak_memory",
            )
        ]
    assert {s for s, _ in logged} == {2, 4}  # steps 2 and 4, and the validation at the epoch's end (4)
    assert logged[(2, "DeviceStatsMonitor.on_train_batch_end/cpu_rss_bytes")] > 1e6
    assert (4, "DeviceStatsMonitor.on_validation_batch_end/cpu_rss_bytes") in logged


def test_device_stats_monitor_logs_mlx_memory_on_the_gpu_and_filters_keys():
    class OnGPU:
        accelerator = "gpu"

    for cpu_stats in (None, False):  # (False on the GPU leaves out the CPU stats alone, as in Lightning)
        assert set(DeviceStatsMonitor(cpu_stats=cpu_stats).stats(OnGPU())) == {
            "active_memory",
            "peak_memory",
            "cache_memory",
        }
    both = DeviceStatsMonitor(cpu_stats=True).stats(OnGPU())
    assert set(both) == {
        "active_memory",
        "peak_memory",
        "cache_memory",
        "cpu_rss_bytes",
        "cpu_process_percent",
    }


def test_device_stats_monitor_cpu_percent_is_the_cpu_time_over_the_wall_time_in_percent(monkeypatch):
    import types

    from audiotrain.train.callbacks import device_stats

    class OnCPU:
        accelerator, loggers, fast_dev_run, is_global_zero = "cpu", [RecordingLogger()], False, True

    # (user, system, wall): 0.75 s of CPU in 2 s, then a run set up 100 s later
    readings = iter([(10.0, 2.0, 100.0), (10.5, 2.25, 102.0), (60.0, 2.25, 202.0)])

    def read():
        user, system, wall = next(readings)
        clock.now = wall
        return types.SimpleNamespace(user=user, system=system)

    clock = types.SimpleNamespace(now=0.0)
    monkeypatch.setattr(device_stats, "os", types.SimpleNamespace(times=read))
    monkeypatch.setattr(device_stats, "time", types.SimpleNamespace(perf_counter=lambda: clock.now))
    monitor = DeviceStatsMonitor()
    assert monitor.stats(OnCPU())["cpu_process_percent"] == 0.0  # (no earlier reading)
    assert monitor.stats(OnCPU())["cpu_process_percent"] == pytest.approx(37.5)
    # A new run's first reading is not averaged over the time since the last run's (setup forgets it)
    monitor.setup(OnCPU(), None, "fit")
    assert monitor.stats(OnCPU())["cpu_process_percent"] == 0.0


@pytest.mark.parametrize(
    "cpu_stats, stats",
    [
        (None, {"active_memory", "peak_memory", "cache_memory", "cpu_rss_bytes", "cpu_process_percent"}),
        (True, {"active_memory", "peak_memory", "cache_memory", "cpu_rss_bytes", "cpu_process_percent"}),
        (False, set()),
    ],
)
def test_device_stats_monitor_logs_the_cpu_stats_on_the_cpu_and_nothing_with_cpu_stats_false(
    tmp_path, cpu_stats, stats
):
    # Lightning's CPU accelerator's device stats are the CPU stats, and its `_get_and_log_device_stats`
    # begins "if self._cpu_stats is False and device.type == 'cpu': return  # cpu stats are disabled"
    monitor = DeviceStatsMonitor(cpu_stats=cpu_stats)
    t, logger = fit_with_device_stats(
        tmp_path, monitor, make_batches(32), make_batches(16, seed=1), log_every_n_steps=1
    )
    assert t.accelerator == "cpu"
    logged = {k for k in logger.keys() if k.startswith("DeviceStatsMonitor")}
    assert {k.split("/")[1] for k in logged} == stats
    assert {k.split("/")[0] for k in logged} == (
        {f"DeviceStatsMonitor.{hook}" for hook in ("on_train_batch_start", "on_train_batch_end")}
        | {"DeviceStatsMonitor.on_validation_batch_start", "DeviceStatsMonitor.on_validation_batch_end"}
        if stats
        else set()
    )
    peaks = [m[k] for _, m in logger.metrics for k in m if k.endswith("on_train_batch_end/peak_memory")]
    assert len(peaks) == (2 if stats else 0) and all(peak > 0 for peak in peaks)  # (MLX counts CPU arrays)


def test_device_stats_monitor_logs_stepped_batches_nth_validation_batches_and_not_the_sanity_check(tmp_path):
    # The Trainer's default sanity check (2 batches; quiet_trainer's 0 hid it) logs nothing, the
    # micro-batches of an accumulation nothing, and validation its every log_every_n_steps-th batch
    # 8 batches (4 steps), 3 in validation; on_train_batch_start, read before each micro-batch of a logging
    # step, is left out here
    _, logger = fit_with_device_stats(
        tmp_path,
        DeviceStatsMonitor(filter_keys={"peak_memory"}),
        make_batches(128),
        make_batches(48, seed=1),
        log_every_n_steps=2,
        accumulate_grad_batches=2,
        num_sanity_val_steps=2,
    )
    rows = [(step, k.split("/")[0].split(".")[1]) for step, m in logger.metrics for k in m if "Device" in k]
    assert [row for row in rows if row[1] != "on_train_batch_start"] == [
        (2, "on_train_batch_end"),
        (4, "on_train_batch_end"),
        (4, "on_validation_batch_start"),  # (the second validation batch, batch_idx 1)
        (4, "on_validation_batch_end"),
    ]


def test_device_stats_monitor_without_a_logger_runs_validate_and_fast_dev_run(tmp_path):
    # As Lightning's: only a fit is refused without a logger, and fast_dev_run has none to log to
    validating = quiet_trainer(tmp_path, compile=False, log_every_n_steps=1, callbacks=[DeviceStatsMonitor()])
    validating.validate(TinyClassifier(), make_batches(32))
    fast = quiet_trainer(tmp_path, fast_dev_run=True, compile=False, callbacks=[DeviceStatsMonitor()])
    fast.fit(TinyClassifier(), make_batches(32))
    for trainer in (validating, fast):  # (nothing logged anywhere, not even in trainer.logged_metrics)
        assert not [k for k in trainer.logged_metrics if k.startswith("DeviceStatsMonitor")]


def test_device_stats_monitor_reads_each_mlx_memory_figure_from_its_own_counter():
    class OnGPU:
        accelerator = "gpu"

    mx.reset_peak_memory()
    freed = mx.zeros((10_000_000,))
    mx.eval(freed)
    del freed  # (40 MB at the peak, none of it active any more)
    stats = DeviceStatsMonitor().stats(OnGPU())
    assert stats["peak_memory"] - stats["active_memory"] >= 39e6
    assert stats["cache_memory"] == mx.get_cache_memory() != mx.get_active_memory()


def test_device_stats_monitor_warns_rank_zero_alone_of_a_cpu_stat_not_logged_on_the_gpu():
    import types
    import warnings

    def setup(is_global_zero):
        trainer = types.SimpleNamespace(
            accelerator="gpu", loggers=[RecordingLogger()], fast_dev_run=False, is_global_zero=is_global_zero
        )
        DeviceStatsMonitor(filter_keys={"cpu_rss_bytes"}).setup(trainer, None, "fit")

    with pytest.warns(UserWarning, match="cpu_rss_bytes not among the stats logged here"):
        setup(is_global_zero=True)  # (cpu_stats None on the GPU: no CPU stats)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        setup(is_global_zero=False)


def test_device_stats_monitor_log_only_filter_keys(tmp_path):
    logger = RecordingLogger()
    cb = DeviceStatsMonitor(filter_keys={"cpu_rss_bytes"})
    t = quiet_trainer(
        tmp_path, max_epochs=1, compile=False, logger=logger, log_every_n_steps=1, callbacks=[cb]
    )
    t.fit(TinyClassifier(), make_batches(32))
    assert {k for k in logger.keys() if k.startswith("Device")} == {
        "DeviceStatsMonitor.on_train_batch_start/cpu_rss_bytes",
        "DeviceStatsMonitor.on_train_batch_end/cpu_rss_bytes",
    }
    with pytest.warns(UserWarning, match="filter_keys=...\\): gpu_util not among the stats logged here"):
        quiet_trainer(
            tmp_path,
            max_epochs=1,
            compile=False,
            logger=RecordingLogger(),
            callbacks=[DeviceStatsMonitor(filter_keys={"gpu_util", "peak_memory"})],
        ).fit(TinyClassifier(), make_batches(16))
    nothing_left = RecordingLogger()
    with pytest.warns(UserWarning, match="gpu_util not among the stats logged here"):
        quiet_trainer(
            tmp_path,
            max_epochs=1,
            compile=False,
            logger=nothing_left,
            log_every_n_steps=1,
            callbacks=[DeviceStatsMonitor(filter_keys={"gpu_util"})],
        ).fit(TinyClassifier(), make_batches(32))
    assert nothing_left.metrics and {} not in [m for _, m in nothing_left.metrics]  # (no empty rows)


def test_device_stats_monitor_refuses_a_trainer_without_logger(tmp_path):
    t = quiet_trainer(tmp_path, max_epochs=1, compile=False, callbacks=[DeviceStatsMonitor()])
    with pytest.raises(ValueError, match="DeviceStatsMonitor: the Trainer has no logger"):
        t.fit(TinyClassifier(), make_batches(16))


def test_learning_rate_monitor_refuses_a_trainer_without_logger_before_any_batch(tmp_path):
    """Trainer(logger=False) with a LearningRateMonitor trained and logged nothing, silently: the user
    learned it only from an empty log (Lightning's monitor raises at train start, as DeviceStatsMonitor
    here)."""
    from audiotrain.train.callbacks import LearningRateMonitor

    module = TinyClassifier()
    t = quiet_trainer(tmp_path, max_epochs=1, compile=False, logger=False, callbacks=[LearningRateMonitor()])
    with pytest.raises(ValueError, match="LearningRateMonitor: the Trainer has no logger"):
        t.fit(module, make_batches(16))
    assert t.global_step == 0
    t = quiet_trainer(tmp_path, max_epochs=1, fast_dev_run=True, callbacks=[LearningRateMonitor()])
    t.fit(TinyClassifier(), make_batches(16))  # (fast_dev_run logs nothing, and is not refused)


def test_device_stats_monitor_refuses_cpu_stats_off_linux_without_psutil(tmp_path, monkeypatch):
    import importlib.util
    import sys

    monkeypatch.setattr(sys, "platform", "darwin")
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "psutil" else find_spec(name, *a)
    )
    t = quiet_trainer(
        tmp_path,
        max_epochs=1,
        compile=False,
        logger=RecordingLogger(),
        callbacks=[DeviceStatsMonitor(cpu_stats=True)],
    )
    with pytest.raises(
        ModuleNotFoundError, match=r"on the CPU accelerator, .*psutil is not installed: `pip install psutil`"
    ):
        t.fit(TinyClassifier(), make_batches(16))
    # cpu_stats=False on the CPU logs nothing (as Lightning's): nothing to read with psutil
    unread = DeviceStatsMonitor(cpu_stats=False)
    quiet_trainer(tmp_path, max_epochs=1, compile=False, logger=RecordingLogger(), callbacks=[unread]).fit(
        TinyClassifier(), make_batches(16)
    )


@pytest.mark.parametrize("stage", ["validate", "test"])
def test_device_stats_monitor_refuses_cpu_stats_off_linux_without_psutil_before_validate_or_test(
    tmp_path, monkeypatch, stage
):
    # Validate and test log the stats too: refused before the first batch, not a bare
    # ModuleNotFoundError at the first logged one.
    import importlib.util
    import sys

    from audiotrain.train.callbacks import device_stats

    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(device_stats, "own_status_bytes", lambda field: None)  # (no /proc)
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "psutil" else find_spec(name, *a)
    )
    monkeypatch.setitem(sys.modules, "psutil", None)  # (import psutil fails, as where it is not installed)
    module = TinyClassifier()
    started = []
    module.on_validation_batch_start = module.on_test_batch_start = lambda *a: started.append(a)
    t = quiet_trainer(
        tmp_path,
        compile=False,
        log_every_n_steps=1,
        logger=RecordingLogger(),
        callbacks=[DeviceStatsMonitor()],
    )
    with pytest.raises(
        ModuleNotFoundError, match=r"on the CPU accelerator, .*psutil is not installed: `pip install psutil`"
    ):
        getattr(t, stage)(module, make_batches(16))
    assert started == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"cpu_stats": "yes"}, r"DeviceStatsMonitor\(cpu_stats='yes'\): expected True, False or None"),
        ({"filter_keys": "peak_memory"}, r"DeviceStatsMonitor\(filter_keys='peak_memory'\): expected a set"),
    ],
)
def test_device_stats_monitor_refuses_a_wrong_argument_naming_it(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DeviceStatsMonitor(**kwargs)


# ---- OnExceptionCheckpoint ---------------------------------------------------------------------------
class Failing(TinyClassifier):
    """Raises RuntimeError in its loss at global step `at` (0: never)."""

    def __init__(self, at=0):
        super().__init__()
        self.at = at

    def compute_loss(self, batch):
        if self.trainer.global_step == self.at - 1 and self.trainer.fitting:
            raise RuntimeError("loss failed")
        return super().compute_loss(batch)


def raise_at(step, error=RuntimeError("hook failed")):
    def hook(trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == step:
            raise error

    return LambdaCallback(on_train_batch_end=hook)


def seeded(make=TinyClassifier, *args):
    """A model with the same initial weights each time."""
    mx.random.seed(0)
    return make(*args)


def uninterrupted(tmp_path, epochs=2):
    model = seeded()
    quiet_trainer(tmp_path / "whole", max_epochs=epochs, compile=False).fit(model, make_batches(64))
    return weights(model)


def shuffled_loader():
    """A DataLoader that keeps its position in checkpoints (the list of batches does not)."""
    from audiotrain.data import DataLoader

    x, y = make_data(64)
    return DataLoader([(x[i], y[i]) for i in range(64)], batch_size=16, shuffle=True, seed=3)


@pytest.mark.parametrize("where", ["hook", "loss"])
@pytest.mark.parametrize("data", [make_batches, shuffled_loader], ids=["batches", "DataLoader"])
def test_on_exception_checkpoint_saves_a_checkpoint_that_resumes_exactly(tmp_path, where, data):
    cb = OnExceptionCheckpoint(tmp_path / "saved")
    failing = [cb, raise_at(6)] if where == "hook" else [cb]
    model = seeded() if where == "hook" else seeded(Failing, 6)
    t = quiet_trainer(tmp_path, max_epochs=2, compile=False, callbacks=failing)
    with pytest.raises(RuntimeError, match="failed"):
        t.fit(model, data())
    assert (
        cb.ckpt_path == tmp_path / "saved" / "on_exception"
        and (cb.ckpt_path / "trainer_state.json").is_file()
    )
    assert t.global_step == (6 if where == "hook" else 5)  # (the loss failed in the 6th step)
    resumed = TinyClassifier()
    quiet_trainer(tmp_path, max_epochs=2, compile=False).fit(resumed, data(), ckpt_path=cb.ckpt_path)
    whole = seeded()
    quiet_trainer(tmp_path / "whole", max_epochs=2, compile=False).fit(whole, data())
    assert all((weights(resumed)[k] == v).all() for k, v in weights(whole).items())


def test_ckpt_path_last_is_the_on_exception_checkpoint_where_it_is_newer(tmp_path):
    """Lightning 2.6.6's `ckpt_path="last"` is the newest of the OnExceptionCheckpoints' saves and the
    ModelCheckpoints' `last` (measured: a fit that failed mid-epoch resumes from `on_exception.ckpt`, and
    `validate(ckpt_path="last")` loads it). "last" looked at the ModelCheckpoint alone: the rerun fit went back
    to the epoch's start, and with no `last` it said nothing was saved and trained from scratch."""
    from audiotrain.train.callbacks import ModelCheckpoint

    def callbacks(*more):
        return [ModelCheckpoint(dirpath=tmp_path / "ck", save_last=True), cb, *more]

    cb = OnExceptionCheckpoint(tmp_path / "saved")
    t = quiet_trainer(tmp_path, max_epochs=2, enable_checkpointing=True, callbacks=callbacks(raise_at(6)))
    with pytest.raises(RuntimeError, match="hook failed"):
        t.fit(seeded(), make_batches(64))  # (4 batches an epoch: `last` at step 4, the failure at 6)
    resumed = seeded()
    t = quiet_trainer(tmp_path, max_epochs=2, enable_checkpointing=True, callbacks=callbacks())
    t.fit(resumed, make_batches(64), ckpt_path="last")
    assert (t.ckpt_path, t.global_step) == (str(cb.ckpt_path), 8)
    assert all((weights(resumed)[k] == v).all() for k, v in uninterrupted(tmp_path).items())
    # (now the ModelCheckpoint's `last`, at step 8, is the newer)
    t = quiet_trainer(tmp_path, max_epochs=2, enable_checkpointing=True, callbacks=callbacks())
    t.validate(seeded(), make_batches(32), ckpt_path="last")
    assert t.ckpt_path == str(tmp_path / "ck" / "last")
    # Without a `last`, the failure's save is the one "last" names (for fit too: not a start from scratch).
    t = quiet_trainer(tmp_path / "other", max_epochs=3, callbacks=[cb])
    with pytest.warns(UserWarning, match="callbacks this Trainer does not have"):  # (the ModelCheckpoint)
        t.validate(seeded(), make_batches(32), ckpt_path="last")
    assert t.ckpt_path == str(cb.ckpt_path)
    with pytest.warns(UserWarning, match="callbacks this Trainer does not have"):
        t.fit(seeded(), make_batches(64), ckpt_path="last")
    assert (t.ckpt_path, t.global_step) == (str(cb.ckpt_path), 12)


def test_on_exception_checkpoint_takes_the_ctrl_c_checkpoint_once(tmp_path, monkeypatch, capsys):
    from audiotrain.train import checkpoint

    saves = []
    write = checkpoint.write_checkpoint
    monkeypatch.setattr(
        checkpoint, "write_checkpoint", lambda path, *a, **k: saves.append(path) or write(path, *a, **k)
    )
    cb = OnExceptionCheckpoint(tmp_path / "saved", filename="stopped")
    t = quiet_trainer(
        tmp_path,
        max_epochs=2,
        compile=False,
        enable_checkpointing=True,
        callbacks=[cb, raise_at(3, KeyboardInterrupt())],
    )
    t.fit(TinyClassifier(), make_batches(64))  # (a Ctrl-C stops the fit, which returns)
    assert t.interrupted and t.global_step == 3
    interrupted = [p for p in saves if "last" not in str(p)]
    assert interrupted == [cb.ckpt_path]  # once, at this callback's path: no `interrupted` beside it
    assert not (tmp_path / "checkpoints" / "interrupted").exists()
    assert f"Saved {cb.ckpt_path} at epoch 0, global step 3" in capsys.readouterr().err


def test_on_exception_checkpoint_saves_a_ctrl_c_where_checkpointing_is_off(tmp_path, capsys):
    cb = OnExceptionCheckpoint(tmp_path / "saved")
    t = quiet_trainer(tmp_path, max_epochs=2, compile=False, callbacks=[cb, raise_at(3, KeyboardInterrupt())])
    t.fit(seeded(), make_batches(64))
    assert t.interrupted and (cb.ckpt_path / "trainer_state.json").is_file()
    err = capsys.readouterr().err
    assert "saving a checkpoint after this step" in err and "no checkpoint saved" not in err
    t2 = quiet_trainer(tmp_path, max_epochs=2, compile=False)
    t2.fit(model := TinyClassifier(), make_batches(64), ckpt_path=cb.ckpt_path)
    assert all((weights(model)[k] == v).all() for k, v in uninterrupted(tmp_path).items())


def test_on_exception_checkpoint_says_where_it_saved_and_how_to_resume(tmp_path, capsys):
    cb = OnExceptionCheckpoint(tmp_path / "saved")
    with pytest.raises(RuntimeError, match="loss failed"):
        quiet_trainer(tmp_path, max_epochs=1, compile=False, callbacks=[cb]).fit(Failing(3), make_batches(64))
    assert (
        f"Saved {cb.ckpt_path} after RuntimeError at epoch 0, global step 2. Resume with "
        f"trainer.fit(..., ckpt_path={str(cb.ckpt_path)!r})"
    ) in capsys.readouterr().err


def test_on_exception_checkpoint_that_cannot_save_warns_and_lets_the_fits_error_through(
    tmp_path, monkeypatch
):
    cb = OnExceptionCheckpoint(tmp_path / "saved")
    t = quiet_trainer(tmp_path, max_epochs=1, compile=False, callbacks=[cb])

    def disk_full(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(t, "save_checkpoint", disk_full)
    with pytest.warns(UserWarning, match=r"OnExceptionCheckpoint: could not save .*on_exception: disk full"):
        with pytest.raises(RuntimeError, match="loss failed"):
            t.fit(Failing(3), make_batches(64))


def test_on_exception_checkpoint_saves_at_a_keyboard_interrupt_that_is_no_stop_signal(tmp_path):
    # Raised by the data (not a hook, where it would stop the fit as Ctrl-C does), it ends the fit as any
    # exception does, and is saved as one: only a stop's own checkpoint is left to the Trainer.
    from audiotrain.data import DataLoader

    x, y = make_data(64)

    class InterruptedData:
        def __len__(self):
            return 64

        def __getitem__(self, i):
            if i == 40:
                raise KeyboardInterrupt
            return x[i], y[i]

    cb = OnExceptionCheckpoint(tmp_path / "saved")
    t = quiet_trainer(tmp_path, max_epochs=1, compile=False, callbacks=[cb])
    with pytest.raises(KeyboardInterrupt):
        t.fit(TinyClassifier(), DataLoader(InterruptedData(), batch_size=16))
    assert not t.interrupted and t.global_step == 2
    assert (cb.ckpt_path / "trainer_state.json").is_file()


def test_on_exception_checkpoint_saves_nothing_before_training_starts(tmp_path):
    class BadOptimizer(TinyClassifier):
        def configure_optimizers(self):
            raise RuntimeError("no optimizer")

    cb = OnExceptionCheckpoint(tmp_path / "saved")
    with pytest.raises(RuntimeError, match="no optimizer"):
        quiet_trainer(tmp_path, max_epochs=1, compile=False, callbacks=[cb]).fit(
            BadOptimizer(), make_batches(16)
        )
    assert not (tmp_path / "saved").exists()


def test_a_callback_failing_in_on_exception_neither_hides_the_error_nor_keeps_the_others_from_theirs(
    tmp_path,
):
    def fails(trainer, module, exception):
        raise ValueError("on_exception failed")

    seen = []
    callbacks = [
        LambdaCallback(on_exception=fails),
        LambdaCallback(on_exception=lambda trainer, module, exception: seen.append(exception)),
    ]
    t = quiet_trainer(tmp_path, max_epochs=1, compile=False, callbacks=callbacks)
    with pytest.raises(RuntimeError, match="loss failed"):  # (the fit's error, not the callback's)
        t.fit(Failing(2), make_batches(64))
    assert len(seen) == 1 and str(seen[0]) == "loss failed"


def test_a_ctrl_c_reaches_the_callbacks_on_exception_as_a_keyboard_interrupt(tmp_path):
    """As in Lightning, callbacks hear of a stop through on_exception (a progress bar closes, a logger marks
    the run stopped), although fit returns."""
    seen = []
    callbacks = [
        LambdaCallback(on_exception=lambda trainer, module, exception: seen.append(exception)),
        raise_at(3, KeyboardInterrupt()),
    ]
    t = quiet_trainer(tmp_path, max_epochs=1, compile=False, callbacks=callbacks)
    t.fit(TinyClassifier(), make_batches(64))
    assert t.interrupted and [type(exception) for exception in seen] == [KeyboardInterrupt]


def test_on_exception_checkpoint_saves_after_the_users_callbacks_on_exception(tmp_path, monkeypatch):
    """Passed first, it still saves last: a callback's on_exception (a weight-averaging one putting the
    training weights back) has run before the checkpoint is taken."""
    from audiotrain.train import checkpoint

    events = []
    write = checkpoint.write_checkpoint
    monkeypatch.setattr(
        checkpoint, "write_checkpoint", lambda path, *a, **k: events.append("saved") or write(path, *a, **k)
    )
    user = LambdaCallback(on_exception=lambda trainer, module, exception: events.append("user"))
    t = quiet_trainer(
        tmp_path, max_epochs=1, compile=False, callbacks=[OnExceptionCheckpoint(tmp_path / "saved"), user]
    )
    with pytest.raises(RuntimeError, match="loss failed"):
        t.fit(Failing(2), make_batches(64))
    assert events == ["user", "saved"]


def test_on_exception_checkpoint_refuses_a_users_file_at_its_path_when_fit_starts(tmp_path):
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "on_exception").write_text("my notes")
    cb = OnExceptionCheckpoint(tmp_path / "saved")
    t = quiet_trainer(tmp_path, max_epochs=1, compile=False, callbacks=[cb])
    with pytest.raises(FileExistsError, match="on_exception: it is a file, which a save never replaces"):
        t.fit(TinyClassifier(), make_batches(16))
    assert t.global_step == 0 and (tmp_path / "saved" / "on_exception").read_text() == "my notes"


def test_on_exception_checkpoint_saves_a_tilde_dirpath_in_the_home_folder(tmp_path, monkeypatch):
    # The fit-start check looked in the home folder while the save wrote a literal `~` folder in the working
    # directory (Lightning's ModelCheckpoint expands `~` too).
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    cb = OnExceptionCheckpoint("~/saved")
    assert cb.ckpt_path == tmp_path / "home" / "saved" / "on_exception"
    with pytest.raises(RuntimeError, match="loss failed"):
        quiet_trainer(tmp_path, max_epochs=1, compile=False, callbacks=[cb]).fit(Failing(3), make_batches(64))
    assert (tmp_path / "home" / "saved" / "on_exception" / "trainer_state.json").is_file()
    assert list((tmp_path / "cwd").iterdir()) == []


@pytest.mark.parametrize("inside", [False, True], ids=["is-a-file", "inside-a-file"])
def test_on_exception_checkpoint_refuses_a_dirpath_that_is_a_file_when_fit_starts(tmp_path, inside):
    (tmp_path / "notes").write_text("my notes")
    dirpath = tmp_path / "notes" / "sub" if inside else tmp_path / "notes"
    where = f"is inside {tmp_path / 'notes'}, which is" if inside else "is"
    t = quiet_trainer(tmp_path, max_epochs=1, compile=False, callbacks=[OnExceptionCheckpoint(dirpath)])
    with pytest.raises(
        NotADirectoryError,
        match=re.escape(
            f"OnExceptionCheckpoint(dirpath='{dirpath}'): {dirpath} {where} a file, not a folder"
        ),
    ):
        t.fit(TinyClassifier(), make_batches(16))
    assert t.global_step == 0 and (tmp_path / "notes").read_text() == "my notes"


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"dirpath": None}, TypeError, r"OnExceptionCheckpoint\(dirpath=None\): expected a folder path"),
        ({"dirpath": ""}, TypeError, r"OnExceptionCheckpoint\(dirpath=''\): expected a folder path"),
        (
            {"dirpath": "d", "filename": ""},
            ValueError,
            r"filename=''\): expected the checkpoint folder's name",
        ),
        ({"dirpath": "d", "filename": "a/b"}, ValueError, r"filename='a/b'\): expected"),
    ],
)
def test_on_exception_checkpoint_refuses_a_wrong_argument_naming_it(kwargs, error, message):
    with pytest.raises(error, match=message):
        OnExceptionCheckpoint(**kwargs)


@pytest.mark.parametrize(
    "saved",
    [
        {"train": 5.0, "validate": [1, 2]},
        {"train": 5.0, "predict": {}},
        {"train": float("nan")},
        {"train": -1},
    ],
)
def test_a_damaged_timer_state_is_refused_whatever_stage_it_is_of(saved):
    """Only the train time was checked: a list or object for another stage, or a NaN train time, loaded."""
    with pytest.raises(ValueError, match=r"Timer: the checkpoint's Timer state must be"):
        Timer().load_state_dict({"time_elapsed": saved})
    Timer().load_state_dict({"time_elapsed": {"train": 5.0, "validate": 1.0, "test": 0, "predict": 0.0}})


@pytest.mark.parametrize("stage", ["test", "predict", "validate_without_model"])
def test_best_after_fit_is_the_fits_best_when_the_module_configures_its_model_checkpoint(tmp_path, stage):
    """`trainer.test(model, ckpt_path="best")` after a fit whose ModelCheckpoint came from the module's
    configure_callbacks() was refused as "best_model_path is empty (nothing saved yet...)": the stage
    attached the module's fresh ModelCheckpoint before it named "best". Lightning names it first."""
    from audiotrain.train import ModelCheckpoint

    class Configured(TinyClassifier):
        def configure_callbacks(self):
            return [ModelCheckpoint(dirpath=tmp_path / "ck", monitor="val_loss")]

    t = quiet_trainer(tmp_path, max_epochs=2, compile=False, enable_checkpointing=True)
    model = Configured()
    t.fit(model, make_batches(32), make_batches(16, seed=1))
    best = t.checkpoint_callback.best_model_path
    assert best
    if stage == "test":
        assert t.test(model, make_batches(16, seed=1), ckpt_path="best")
    elif stage == "predict":
        assert t.predict(model, make_batches(16, seed=1), ckpt_path="best")
    else:
        with pytest.warns(UserWarning, match="the best model of the previous fit"):
            assert t.validate(dataloaders=make_batches(16, seed=1))
    assert str(t.ckpt_path) == str(best)


def test_a_modules_subclass_of_a_callback_replaces_the_trainers_callback_of_the_parent_class(tmp_path):
    """A module's configure_callbacks() returning MyEarlyStopping(EarlyStopping) beside the Trainer's
    EarlyStopping kept both, and fit was refused for "more than one stateful callback of type
    EarlyStopping": Lightning replaces the Trainer's callbacks of the module callback's class or a parent."""
    from audiotrain.train import Callback, EarlyStopping

    class MyEarlyStopping(EarlyStopping):
        pass

    class Configured(TinyClassifier):
        def configure_callbacks(self):
            return MyEarlyStopping(monitor="val_loss", patience=5)

    plain = Callback()  # (a plain Callback the Trainer was given is never replaced, as in Lightning)
    t = quiet_trainer(tmp_path, max_epochs=1, compile=False, callbacks=[EarlyStopping("val_loss"), plain])
    t.fit(Configured(), make_batches(32), make_batches(16, seed=1))
    stoppers = [cb for cb in t.callbacks if isinstance(cb, EarlyStopping)]
    assert [type(cb) for cb in stoppers] == [MyEarlyStopping] and stoppers[0].patience == 5
    assert plain in t.callbacks


def test_a_configure_callbacks_that_returns_none_adds_nothing_as_in_lightning(tmp_path):
    """`def configure_callbacks(self): if self.early_stop: return [EarlyStopping(...)]` returns None when the
    flag is off, which Lightning takes as no callbacks; fit was refused with "configure_callbacks() must
    return a Callback or a list of Callbacks, got None"."""
    from audiotrain.train import EarlyStopping

    class MaybeStops(TinyClassifier):
        early_stop = False

        def configure_callbacks(self):
            if self.early_stop:
                return [EarlyStopping("val_loss")]

    t = quiet_trainer(tmp_path, max_epochs=1, compile=False)
    before = list(t.callbacks)
    t.fit(MaybeStops(), make_batches(32))
    assert t.callbacks == before and t.current_epoch == 1


def test_the_learning_rate_monitor_keeps_what_it_logged_under_lightnings_attributes(tmp_path):
    """A port that reads `lr_monitor.lrs` after `fit` (Lightning's record of the logged rates) got an
    AttributeError. Lightning 2.6.6, SGD(lr=0.1, momentum=0.9) without a scheduler, 2 epochs of 7 batches,
    log_every_n_steps=2, logging_interval="step": lrs == {"lr-SGD": [0.1] * 7}, last_momentum_values
    {"lr-SGD-momentum": 0.9}; and with log_momentum off its momentum key holds None."""
    from audiotrain.train.callbacks import LearningRateMonitor

    import mlx.optimizers as optim

    class Sgd(TinyClassifier):
        def configure_optimizers(self):
            return optim.SGD(learning_rate=0.1, momentum=0.9)

    monitor = LearningRateMonitor(logging_interval="step", log_momentum=True, log_weight_decay=True)
    trainer = quiet_trainer(
        tmp_path, max_epochs=2, log_every_n_steps=2, logger=RecordingLogger(), callbacks=[monitor]
    )
    trainer.fit(Sgd(), make_batches(112, 16))
    assert monitor.lrs == {"lr-SGD": [0.1] * 7}
    assert monitor.last_momentum_values == {"lr-SGD-momentum": 0.9}
    assert monitor.last_weight_decay_values == {"lr-SGD-weight_decay": 0.0}

    plain = LearningRateMonitor(logging_interval="epoch")
    trainer = quiet_trainer(
        tmp_path, max_epochs=2, log_every_n_steps=2, logger=RecordingLogger(), callbacks=[plain]
    )
    trainer.fit(Sgd(), make_batches(112, 16))
    assert plain.lrs == {"lr-SGD": [0.1, 0.1]}  # (Lightning 2.6.6: one per epoch)
    assert plain.last_momentum_values == {"lr-SGD-momentum": None}


def test_log_momentum_warns_of_an_optimizer_without_momentum_as_lightning(tmp_path):
    """LearningRateMonitor(log_momentum=True) on Adagrad logged lr-Adagrad-momentum = 0 without a word;
    Lightning 2.6.6 warns (RuntimeWarning) "You have set log_momentum=True, but some optimizers do not have
    momentum. This will log a value 0 for the momentum." SGD (momentum) and Adam (betas) are not warned of."""
    import warnings

    from audiotrain.train.callbacks import LearningRateMonitor

    import mlx.optimizers as optim

    def fit_with(make):
        class Module(TinyClassifier):
            def configure_optimizers(self):
                return make()

        monitor = LearningRateMonitor(log_momentum=True)
        trainer = quiet_trainer(
            tmp_path, max_epochs=1, log_every_n_steps=1, logger=RecordingLogger(), callbacks=[monitor]
        )
        trainer.fit(Module(), make_batches(32, 16))
        return monitor

    with pytest.warns(RuntimeWarning, match="some optimizers do not have momentum"):
        monitor = fit_with(lambda: optim.Adagrad(learning_rate=0.01))
    assert monitor.last_momentum_values == {"lr-Adagrad-momentum": 0.0}
    for make in (lambda: optim.SGD(learning_rate=0.1), lambda: optim.Adam(learning_rate=0.01)):
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            fit_with(make)


def test_a_default_learning_rate_monitor_logs_an_optimizer_without_schedule_at_epoch_starts_and_steps(
    tmp_path,
):
    """LearningRateMonitor() logged an optimizer without lr_scheduler at the logging steps only. Lightning
    2.6.6 logs one at either interval: SGD(lr=0.1), 3 epochs of 7 batches, log_every_n_steps=3 logs lr-SGD
    10 times, at each epoch's start and each logging step (its lrs["lr-SGD"] has 10 entries)."""
    from audiotrain.train.callbacks import LearningRateMonitor

    import mlx.optimizers as optim

    class Sgd(TinyClassifier):
        def configure_optimizers(self):
            return optim.SGD(learning_rate=0.1)

    monitor, logger = LearningRateMonitor(), RecordingLogger()
    trainer = quiet_trainer(tmp_path, max_epochs=3, log_every_n_steps=3, logger=logger, callbacks=[monitor])
    trainer.fit(Sgd(), make_batches(112, 16))
    assert monitor.lrs == {"lr-SGD": [0.1] * 10}
    logged = [step for step, m in logger.metrics if "lr-SGD" in m]
    assert {0, 7, 14} <= set(logged) and {3, 6, 9} <= set(logged)  # (epoch starts, logging steps)
