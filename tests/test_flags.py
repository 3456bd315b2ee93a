"""Trainer flags (train/flags.py): Lightning's names do what Lightning does, or say what to use on MLX."""

import datetime
import re
import types
import warnings

import audiotrain  # noqa: F401  (before mlx)
from audiotrain import Trainer
from audiotrain.train import flags, run_state
from audiotrain.train.callbacks import Callback, EarlyStopping, ModelCheckpoint, Timer

import mlx.core as mx
import pytest
from tasks import TinyClassifier, make_batches, quiet_trainer, weights


def trainer(tmp_path, **kwargs):
    return quiet_trainer(tmp_path, **kwargs)


# What Lightning 2.6.6 (torch 2.13, CPU) does with each: 16 / "16" / "16-mixed" warns "AMP with fp16 is
# not supported on CPU. Using `precision='bf16-mixed'` instead." and trains bf16-mixed; "16-true" trains
# float16 weights and batches; 64 / "64-true" trains float64 (weights, batches, losses, checkpoint);
# "transformer-engine" needs NVIDIA's package. MLX runs none of them here, so each says which setting
# comes closest.
@pytest.mark.parametrize(
    "precision, use",
    [
        ("16-mixed", "Use precision='bf16-mixed'"),
        ("16", "Use precision='bf16-mixed'"),
        (16, "Use precision='bf16-mixed'"),
        ("16-true", "Use precision='bf16-true'"),
        (64, "Use precision='32'"),
        ("64", "Use precision='32'"),
        ("64-true", "Use precision='32'"),
        ("transformer-engine", "Use precision='bf16-mixed'"),
        ("transformer-engine-float16", "Use precision='bf16-mixed'"),
    ],
)
def test_lightning_precisions_mlx_cannot_run_say_what_to_use(precision, use):
    # (before: every one of them said "Use precision='bf16-mixed' ..., 'bf16-true', or '32'", 64 bits
    # included, and "transformer-engine-float16", one of Lightning's, got the bare list of the three)
    with pytest.raises(ValueError, match=f"precision={precision!r}\\): not available on MLX: .*{use}"):
        Trainer(max_epochs=1, precision=precision)


def test_misspelt_precision_names_the_closest_and_an_unhashable_one_is_refused_by_name():
    # Lightning 2.6.6: "Precision 'bf16-mixd' is invalid. Allowed precision values: (...)"
    with pytest.raises(
        ValueError, match="precision='bf16-mixd'.*expected one of .*did you mean 'bf16-mixed'"
    ):
        Trainer(max_epochs=1, precision="bf16-mixd")
    # (before: TypeError "unhashable type: 'list'", naming no flag)
    with pytest.raises(ValueError, match=r"Trainer\(precision=\['bf16-mixed'\]\): expected one of"):
        Trainer(max_epochs=1, precision=["bf16-mixed"])
    # (a tuple holding a list passed the Hashable check, then raised "unhashable type: 'list'" the same way)
    with pytest.raises(ValueError, match=r"Trainer\(precision=\('bf16', \[1\]\)\): expected one of"):
        Trainer(max_epochs=1, precision=("bf16", [1]))


def test_accelerator_and_devices():
    assert Trainer(max_epochs=1, accelerator="cpu").device == mx.cpu
    has_gpu = mx.metal.is_available() or mx.cuda.is_available()
    assert Trainer(max_epochs=1).accelerator == ("gpu" if has_gpu else "cpu")
    if not has_gpu:
        # The CPU wheel out first: two backends' wheels overwrite each other's libmlx.so.
        gpu_hint = (
            r"this MLX has no GPU backend \(on Linux .*pip uninstall mlx-cpu, then .*\[cuda13\].*\[cuda\]"
        )
        with pytest.raises(ValueError, match=gpu_hint):
            Trainer(max_epochs=1, accelerator="gpu")
    with pytest.raises(ValueError, match="accelerator='tpu'.*'auto', 'cpu' or 'gpu'"):
        Trainer(max_epochs=1, accelerator="tpu")
    assert Trainer(max_epochs=1, devices=1).devices == Trainer(max_epochs=1, devices="auto").devices == 1
    # Lightning's Trainer(strategy="ddp", devices=2) starts its 2 processes itself: the error names the
    # launcher that does it here, with the user's count, and says that devices=2 is fine under it.
    with pytest.raises(
        ValueError,
        match=r"devices=4\): this is one process.*python -m audiotrain launch -n 4 "
        r"-- python train.py \(or mlx.launch -n 4 .*devices=4, 1 or 'auto' all work",
    ):
        Trainer(max_epochs=1, devices=4)
    assert flags.devices(2, world_size=2) == 1  # Lightning's devices=2 under a launch of 2 processes
    # A count as text (a YAML config's "2"), which Lightning reads as the number, was told to launch the 2
    # processes it was launched on; "-1" (all devices, one here) was refused where -1 is taken.
    assert flags.devices("2", world_size=2) == flags.devices("-1", world_size=1) == 1
    with pytest.raises(ValueError, match=r"devices='3'\): this job has 2 processes.*launch -n 3 "):
        flags.devices("3", world_size=2)
    # A value that counts no device was told to launch N processes. Lightning 2.6.6 refuses each on the CPU:
    # "`devices` selected with `CPUAccelerator` should be an int > 0" (0: "`Trainer(devices=0)` value is not
    # a valid input using cpu accelerator").
    for wrong in (0, -2, 1.5, "abc", []):
        with pytest.raises(
            ValueError, match=re.escape(f"Trainer(devices={wrong!r}): expected 'auto', -1 or 1")
        ):
            Trainer(max_epochs=1, devices=wrong)
    with pytest.raises(ValueError, match=r"devices=3\): this job has 2 processes.*launch -n 3 "):
        flags.devices(3, world_size=2)
    with pytest.raises(ValueError, match="fsdp"):
        Trainer(max_epochs=1, strategy="fsdp")
    # A Lightning config's DDP variants (its way out of "parameters that were not used in producing loss")
    # mean plain data parallel here: MLX all-reduces every gradient. Lightning 2.6.6 takes each on the CPU.
    for variant in ("ddp_find_unused_parameters_true", "ddp_find_unused_parameters_false", "ddp_spawn"):
        assert Trainer(max_epochs=1, strategy=variant).strategy == "auto"
    with pytest.raises(ValueError, match=r"devices=2\): this is one process.*launch -n 2 "):
        Trainer(max_epochs=1, strategy="ddp_spawn", devices=2)


def test_devices_as_a_list_of_gpu_ids():
    """Lightning's `devices=[0]` (a list of GPU ids) is one device, its first GPU (Lightning 2.6.6 on CUDA:
    `num_devices` 1, a SingleDeviceStrategy): the one an MLX process uses. It was told "for data parallel
    over N devices launch N processes". Another single id names how to reach that GPU; several ids say how
    many processes to launch, with their count."""
    assert flags.devices([0], world_size=1) == flags.devices((0,), world_size=1) == 1
    assert Trainer(max_epochs=1, devices=[0]).devices == 1
    with pytest.raises(ValueError, match=r"devices=\[2\]\): .*first GPU it sees.*CUDA_VISIBLE_DEVICES=2"):
        flags.devices([2], world_size=1)
    with pytest.raises(ValueError, match=r"devices=\[0, 1\]\): this is one process.*launch -n 2 "):
        flags.devices([0, 1], world_size=1)
    # Lightning's ids as text (a YAML config's or a CLI's `devices: "0,"`, "1, 3"), read as the list.
    assert flags.devices("0,", world_size=1) == 1
    with pytest.raises(ValueError, match=r"devices='1, 3'\): this is one process.*launch -n 2 "):
        flags.devices("1, 3", world_size=1)


def test_the_cpu_accelerator_runs_the_fit_on_the_cpu(tmp_path):
    seen = []

    class Where(TinyClassifier):
        def on_train_epoch_start(self, epoch):
            seen.append(mx.default_device())

    trainer(tmp_path, max_epochs=1, accelerator="cpu").fit(Where(), make_batches(32))
    assert seen == [mx.cpu]


def test_min_epochs_holds_back_an_early_stop(tmp_path):
    stop = EarlyStopping(monitor="train_loss", patience=0, mode="max")  # stops at the first check
    t = trainer(tmp_path, max_epochs=10, min_epochs=3, callbacks=[stop])
    t.fit(TinyClassifier(), make_batches())
    assert t.current_epoch == 3 and len(t.history["epoch"]) == 3


def test_min_epochs_and_min_steps_read_none_where_not_given(tmp_path):
    """They read 0 where not given; Lightning 2.6.6's `Trainer().min_epochs` / `.min_steps` (and its
    fit_loop's) read None, and a given 0 stays 0. A fit without them still stops at the first request."""
    t = Trainer(max_epochs=1)
    assert (t.min_epochs, t.min_steps) == (None, None)
    assert (t.fit_loop.min_epochs, t.fit_loop.min_steps) == (None, None)
    given = Trainer(max_epochs=1, min_epochs=0, min_steps=0)
    assert (given.min_epochs, given.min_steps) == (0, 0)
    given.fit_loop.min_epochs = None
    assert given.min_epochs is None
    stop = EarlyStopping(monitor="train_loss", patience=0, mode="max")  # stops at the first check
    stops = trainer(tmp_path, max_epochs=5, callbacks=[stop])
    stops.fit(TinyClassifier(), make_batches())
    assert stops.current_epoch < 5 and stops.min_epochs is None


def test_min_steps_holds_back_an_early_stop_to_that_step(tmp_path):
    from audiotrain.train import LambdaCallback

    stop = LambdaCallback(on_train_epoch_end=lambda trainer, module: setattr(trainer, "should_stop", True))
    t = trainer(tmp_path, max_epochs=10, min_steps=9, callbacks=[stop])  # 6 batches an epoch
    t.fit(TinyClassifier(), make_batches())
    assert t.global_step == 9 and t.current_epoch == 1  # (the second epoch stopped after its third step)
    both = trainer(tmp_path / "b", max_epochs=10, min_epochs=3, min_steps=2, callbacks=[stop])
    both.fit(TinyClassifier(), make_batches())
    assert both.current_epoch == 3 and both.global_step == 18
    capped = trainer(tmp_path / "c", max_steps=4, min_steps=100, callbacks=[stop])
    capped.fit(TinyClassifier(), make_batches())
    assert capped.global_step == 4
    with pytest.raises(ValueError, match="min_steps"):
        Trainer(max_epochs=1, min_steps=-1)


@pytest.mark.parametrize(
    "value, seconds",
    [
        ("00:00:00:01", 1),
        ("01:02:03:04", 93784),  # days, hours, minutes, seconds in that order
        ("00:12:00:00", 43200),
        (datetime.timedelta(milliseconds=1), 0.001),
        ({"seconds": 2}, 2),
    ],
)
def test_max_time_takes_lightnings_forms(value, seconds):
    assert Trainer(max_time=value).max_time == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["00:00:00:00", {"seconds": 0}, datetime.timedelta(0)])
def test_a_max_time_of_zero_is_refused(value):
    """A zero budget would end every fit before its first step."""
    with pytest.raises(ValueError, match=r"max_time=.*expected a positive duration"):
        Trainer(max_time=value)


@pytest.mark.parametrize(
    "value", [{"days": 10**10}, "99999999999:00:00:00", {"seconds": float("nan")}, {"seconds": float("inf")}]
)
def test_a_max_time_too_large_or_not_a_number_is_refused_naming_the_flag(value):
    """timedelta's own OverflowError / 'cannot convert float NaN to integer' named neither flag nor form."""
    with pytest.raises(ValueError, match=r"^Trainer\(max_time=.*\): expected a finite duration"):
        Trainer(max_time=value)
    with pytest.raises(ValueError, match=r"^Timer\(duration=.*\): expected a finite duration"):
        Timer(duration=value)


def test_a_max_time_dict_with_a_misspelt_key_names_the_key():
    """{'minute': 1} was refused without saying which key was wrong; Lightning 2.6.6's error names it
    ("TypeError: 'minute' is an invalid keyword argument for __new__()")."""
    with pytest.raises(
        ValueError,
        match=r"^Trainer\(max_time=\{'minute': 1\}\): expected a dict of weeks.*"
        r"'minute' is none",
    ):
        Trainer(max_time={"minute": 1})
    with pytest.raises(ValueError, match=r"^Timer\(duration=.*'hour' is none"):
        Timer(duration={"hour": 2})


def test_a_max_time_string_read_from_a_file_keeps_working_with_its_newline():
    """As Lightning's Timer, which strips the string: `max_time=open("budget").read()` ends in a newline."""
    assert Trainer(max_time=" 00:00:01:00\n").max_time == 60.0


@pytest.mark.parametrize("value", [30, 30.0])
def test_a_max_time_in_plain_seconds_is_refused_with_the_form_that_says_seconds(value):
    """Lightning refuses a number too; the message shows how to say it."""
    with pytest.raises(ValueError, match=r"\{'seconds': 30\}"):
        Trainer(max_time=value)


def test_a_timer_duration_error_names_the_timer():
    with pytest.raises(ValueError, match=r"^Timer\(duration='bad'\): expected 'DD:HH:MM:SS'"):
        Timer(duration="bad")


@pytest.mark.parametrize(
    "flag, value",
    [
        ("val_check_interval", 0),
        ("val_check_interval", 0.0),
        ("val_check_interval", True),  # a bool is not a number of batches, here or in Lightning
        ("limit_train_batches", True),
        ("limit_val_batches", False),
        ("accumulate_grad_batches", True),
        ("check_val_every_n_epoch", True),
    ],
)
def test_a_bool_or_zero_where_a_positive_number_is_needed_is_refused_naming_the_flag(flag, value):
    """True would have meant one batch (limit_train_batches=True: "all" read as 1), 0 never validating."""
    with pytest.raises(ValueError, match=rf"^Trainer\({flag}={value!r}\): expected"):
        Trainer(max_epochs=1, **{flag: value})


def test_lightning_1s_accumulation_dict_points_at_the_scheduler():
    """Lightning 1 took Trainer(accumulate_grad_batches={epoch: n}); Lightning 2 moved it to a callback. The
    message said only "expected a positive int", so a port did not learn where the schedule goes."""
    expected = r"accumulate_grad_batches=\{0: 8, 4: 4\}\).*GradientAccumulationScheduler\(scheduling=\{0: 8"
    with pytest.raises(ValueError, match=expected):
        Trainer(max_epochs=1, accumulate_grad_batches={0: 8, 4: 4})


class AccumulateTo(Callback):
    """A user's own schedule: the batches a step needs for a target batch size, set at each epoch start."""

    def __init__(self, value):
        self.value = value

    def on_train_epoch_start(self, trainer, module):
        trainer.accumulate_grad_batches = self.value


@pytest.mark.parametrize("value", [32 // 64, -1, "2", True, 2.5])
def test_an_accumulation_a_callback_sets_is_checked_as_the_flag(tmp_path, value):
    """Before, 0 stopped the fit with a bare KeyError: 'grad_accum', and '2' with a TypeError from a
    comparison inside the Trainer; neither said which setting was wrong."""
    fit = trainer(tmp_path, max_epochs=1, callbacks=[AccumulateTo(value)])
    expected = rf"^trainer\.accumulate_grad_batches = {value!r}: expected a positive int"
    with pytest.raises(ValueError, match=expected):
        fit.fit(TinyClassifier(), make_batches())


def test_an_accumulation_a_callback_sets_takes_effect(tmp_path):
    fit = trainer(tmp_path, max_epochs=1, callbacks=[AccumulateTo(64 / 16)])  # (a whole float is an int)
    fit.fit(TinyClassifier(), make_batches(48, batch_size=8))
    assert (fit.global_step, fit.accumulate_grad_batches) == (2, 4)


def test_max_time_stops_the_fit(tmp_path):
    t = trainer(tmp_path, max_epochs=1000, max_time={"milliseconds": 1})
    t.fit(TinyClassifier(), make_batches())
    assert t.global_step < 1000 * 6
    with pytest.raises(ValueError, match=r"max_time='1 hour'.*'DD:HH:MM:SS'"):
        Trainer(max_time="1 hour")


class OneSecondASteps(Callback):
    """The clock `max_time` reads, one second further after each training batch; saves at `save_at`."""

    def __init__(self, monkeypatch, save_at=None, path=None):
        self.now, self.save_at, self.path = 1000.0, save_at, path
        monkeypatch.setattr(run_state, "time", types.SimpleNamespace(perf_counter=lambda: self.now))

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.now += 1.0
        if trainer.global_step == self.save_at:
            trainer.save_checkpoint(self.path)


def test_max_time_stops_after_the_step_that_reaches_it_and_counts_the_resumed_runs_time(
    tmp_path, monkeypatch
):
    clock = OneSecondASteps(monkeypatch, save_at=2, path=tmp_path / "at-2s.ckpt")
    t = trainer(tmp_path / "a", max_epochs=1000, max_time={"seconds": 3}, callbacks=[clock])
    t.fit(TinyClassifier(), make_batches())  # 6 batches an epoch
    assert (t.global_step, t.current_epoch, t.should_stop) == (3, 0, True)
    # Resumed from the checkpoint saved after 2 s: the earlier run's time counts, one more second is left.
    resumed = trainer(tmp_path / "b", max_epochs=1000, max_time={"seconds": 3}, callbacks=[clock])
    resumed.fit(TinyClassifier(), make_batches(), ckpt_path=tmp_path / "at-2s.ckpt")
    assert resumed.global_step == 3


def test_a_max_time_set_on_the_trainer_is_checked_and_a_raised_one_trains_on(tmp_path, monkeypatch):
    """As `trainer.max_epochs = 10` raises the epochs: `trainer.max_time = ...` took any value, so a string or
    dict stopped the next fit at its first step with "'>=' not supported between instances of 'float' and
    'str'"."""
    clock = OneSecondASteps(monkeypatch)
    t = trainer(tmp_path, max_epochs=1000, max_time={"seconds": 2}, callbacks=[clock])
    module = TinyClassifier()
    t.fit(module, make_batches())
    assert t.global_step == 2
    t.max_time = "00:00:00:04"
    assert t.max_time == 4.0
    t.fit(module, make_batches())  # a new budget for this fit, as Lightning's Timer restarts at train start
    assert t.global_step == 2 + 4
    with pytest.raises(ValueError, match=r"^Trainer\(max_time='4 s'\): expected 'DD:HH:MM:SS'"):
        t.max_time = "4 s"
    assert t.max_time == 4.0
    # The property reads seconds, and takes them back (a callback's `trainer.max_time = 0.0` ends the fit)
    t.max_time = t.max_time
    assert t.max_time == 4.0
    for wrong in (-1, float("nan"), True):
        with pytest.raises(ValueError, match=r"^Trainer\(max_time="):
            t.max_time = wrong
    assert t.max_time == 4.0


class StopAtFirstEpochEnd(Callback):
    def on_train_epoch_end(self, trainer, module):
        if trainer.current_epoch == 0:
            trainer.should_stop = True


def test_a_trainer_a_stop_request_ended_goes_on_when_fitted_again(tmp_path):
    t = trainer(tmp_path, max_epochs=2, callbacks=[StopAtFirstEpochEnd()])
    module = TinyClassifier()
    t.fit(module, make_batches())
    assert (t.current_epoch, t.global_step, t.should_stop) == (1, 6, True)
    t.max_epochs = 4
    t.fit(module, make_batches())  # a new fit: no stop asked yet
    assert (t.current_epoch, t.global_step, t.should_stop) == (4, 24, False)


def test_a_trainer_max_time_ended_validates_on_its_schedule_when_fitted_again(tmp_path, monkeypatch):
    clock = OneSecondASteps(monkeypatch)
    t = trainer(
        tmp_path,
        max_epochs=4,
        max_time={"seconds": 6},
        val_check_interval=12,  # every 12 steps: at the ends of epochs 1 and 3
        check_val_every_n_epoch=None,  # (where a stop validates the epoch it ends, whatever the interval)
        callbacks=[clock],
    )
    module = TinyClassifier()
    t.fit(module, make_batches(), make_batches(32))
    assert (t.current_epoch, t.global_step, t.should_stop) == (1, 6, True)
    t.max_time = None
    t.fit(module, make_batches(), make_batches(32))
    # Epoch 0 validated where the time ran out; it ran out in the first fit, not in this one: epoch 2 does
    # not validate as where a stop ends the loop.
    assert [v is not None for v in t.history["val_loss"]] == [True, True, False, True]
    assert (t.global_step, t.should_stop) == (24, False)


class CtrlCAtStep2(Callback):
    def __init__(self):
        self.heard = False

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == 2 and not self.heard:
            self.heard = True
            raise KeyboardInterrupt  # (as Ctrl-C heard in the hook: stop after this step and save)


def test_a_trainer_ctrl_c_stopped_forgets_that_stop_when_fitted_again(tmp_path):
    t = trainer(tmp_path, max_epochs=1, callbacks=[CtrlCAtStep2()], enable_checkpointing=True)
    module = TinyClassifier()
    t.fit(module, make_batches())
    assert t.interrupted and t.interrupted_checkpoint is not None and t.global_step == 2
    t.fit(module, make_batches(), ckpt_path=t.interrupted_checkpoint)
    assert (t.interrupted, t.interrupted_checkpoint, t.global_step) == (False, None, 6)


def test_check_val_every_n_epoch(tmp_path):
    t = trainer(tmp_path, max_epochs=4, check_val_every_n_epoch=2)
    t.fit(TinyClassifier(), make_batches(32), make_batches(16))
    assert t.history["val_loss"][0] is None and t.history["val_loss"][1] is not None
    assert [v is None for v in t.history["val_loss"]] == [True, False, True, False]
    with pytest.raises(ValueError, match="check_val_every_n_epoch=None.*int val_check_interval"):
        Trainer(max_epochs=1, check_val_every_n_epoch=None)
    t = trainer(tmp_path, max_epochs=2, check_val_every_n_epoch=None, val_check_interval=3)
    t.fit(TinyClassifier(), make_batches(64), make_batches(16))  # 4 batches an epoch: at batches 3, 6
    assert t.callback_metrics.get("val_loss") is not None


def test_deterministic_always_has_a_seed():
    assert Trainer(max_epochs=1, deterministic=True, seed=None).seed == 42  # None: the default seed
    assert Trainer(max_epochs=1, deterministic=True, accelerator="cpu").deterministic is True


@pytest.mark.parametrize(
    "flag, value, match",
    [
        ("benchmark", True, "cuDNN's autotuner has no MLX counterpart"),
        ("num_nodes", 2, "mlx.launch"),
        ("detect_anomaly", True, "debug_lazy_eval=True"),
        ("use_distributed_sampler", False, r"DataLoader\(\.\.\., distributed=False\)"),
        ("resume_from_checkpoint", "last", r"fit\(\.\.\., ckpt_path=\.\.\.\)"),
        # (was "got an unexpected keyword argument 'truncated_bptt_steps'", as if misspelt)
        ("truncated_bptt_steps", 50, r"consecutive chunks of the same clips.*register_buffer"),
        # (Lightning 2.6.6's flag, taken at None there; was "got an unexpected keyword argument")
        ("model_registry", "my-model", r"no model registry upload.*last_model_path"),
        # Lightning 2.6.6's barebones=True also turns off the model summary, the sanity check and per-step
        # logging (was: "enable_progress_bar=False, enable_checkpointing=False and no logger" alone)
        (
            "barebones",
            True,
            r"enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, "
            r"num_sanity_val_steps=0 and log_every_n_steps=0",
        ),
    ],
)
def test_lightning_flags_without_a_counterpart_say_what_to_use(flag, value, match):
    with pytest.raises(
        ValueError, match=rf"Trainer\({flag}={value!r}\): Lightning's flag has no counterpart.*{match}"
    ):
        Trainer(max_epochs=1, **{flag: value})


@pytest.mark.parametrize(
    "flag, value",
    [("enable_model_summary", False), ("num_nodes", 1), ("inference_mode", True), ("benchmark", False),
     ("sync_batchnorm", False), ("overfit_batches", 0.0), ("truncated_bptt_steps", None),
     ("model_registry", None), ("plugins", [])],
)  # fmt: skip
def test_lightning_flags_at_a_value_that_is_what_happens_anyway_are_accepted(flag, value):
    Trainer(max_epochs=1, **{flag: value})


def test_lightnings_pl_trainer_environment_variables_are_named_as_unread(tmp_path, monkeypatch):
    """Lightning 2.6.6 takes PL_TRAINER_MAX_STEPS=7 as Trainer(max_steps=7)'s default (its test_env_vars);
    they are not read here, and a run set up by them quietly trained another length."""
    monkeypatch.setenv("PL_TRAINER_MAX_STEPS", "7")
    monkeypatch.setenv("PL_TRAINER_LOGGER", "False")
    with pytest.warns(UserWarning, match=r"PL_TRAINER_LOGGER='False', PL_TRAINER_MAX_STEPS='7'.*"
                      r"does not read them: pass Trainer\(logger=\.\.\., max_steps=\.\.\.\)"):  # fmt: skip
        t = trainer(tmp_path, max_epochs=1)
    assert t.max_steps is None
    monkeypatch.delenv("PL_TRAINER_MAX_STEPS")
    monkeypatch.delenv("PL_TRAINER_LOGGER")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trainer(tmp_path, max_epochs=1)


def test_an_unknown_flag_of_a_trainer_subclass_is_refused_in_pythons_words():
    r"""Lightning 2.6.6's test_trainer_subclassing matches r"__init__\(\) got an unexpected keyword argument
    'abcdefg'" (Python's own words for Trainer.__init__); here it said "Trainer() got ..."."""

    class Custom(Trainer):
        def __init__(self, **kwargs):
            self.custom_arg = kwargs.pop("custom_arg", 0)
            super().__init__(**kwargs)

    assert Custom(custom_arg=3, max_epochs=1).custom_arg == 3
    with pytest.raises(
        TypeError, match=r"^Trainer\.__init__\(\) got an unexpected keyword argument 'abcdefg'"
    ):
        Custom(abcdefg="unknown_arg")


def test_an_unknown_trainer_flag_names_the_one_meant():
    with pytest.raises(
        TypeError, match=r"unexpected keyword argument 'max_epoch' \(did you mean 'max_epochs'\?\)"
    ):
        Trainer(max_epochs=1, max_epoch=3)


def test_a_trainer_without_a_training_length_validates_tests_and_predicts(tmp_path, monkeypatch):
    """Trainer() refused to be built without max_epochs/max_steps/max_time, so an inference script had to
    invent max_epochs=1 (Lightning's Trainer().predict(model, loader) works). Only fit needs a length."""
    monkeypatch.chdir(tmp_path)  # (Trainer's default_root_dir is ./logs)
    model, batches = TinyClassifier(), make_batches(32)
    inference = Trainer(enable_progress_bar=False)
    assert [out.shape for out in inference.predict(model, batches)] == [(16, 3), (16, 3)]
    (validated,) = inference.validate(model, batches)
    (tested,) = inference.test(model, batches)
    assert validated["val_loss"] == pytest.approx(tested["test_loss"])
    with pytest.raises(
        ValueError, match=r"Trainer.fit: set max_epochs, max_steps or max_time.*max_epochs=10"
    ):
        inference.fit(model, batches)


def test_a_validation_fraction_of_under_one_batch_is_refused_before_training(tmp_path):
    """It was refused at the first validation, after a whole epoch of training (Lightning refuses it first)."""
    t = trainer(tmp_path, max_epochs=2, limit_val_batches=0.1)  # (no sanity check: quiet_trainer's 0)
    with pytest.raises(
        ValueError, match=r"limit_val_batches=0.1\): 0.1 x the validation loader's 2 batches is less"
    ):
        t.fit(TinyClassifier(), make_batches(64, 16), make_batches(32, 16, seed=1))
    assert t.global_step == 0


def test_lightnings_zero_means_off_and_any_case_algorithm(tmp_path):
    """Lightning's "0 means off" (0.0 was Lightning 1.x's gradient_clip_val default, in many saved configs)
    and its lower-cased gradient_clip_algorithm: all were refused."""

    def trained(**kw):
        mx.random.seed(0)
        module = TinyClassifier()
        trainer(tmp_path / str(len(kw)), max_epochs=1, **kw).fit(module, make_batches())
        return weights(module)

    unclipped = trained()
    assert all((unclipped[k] == w).all() for k, w in trained(gradient_clip_val=0).items())
    assert Trainer(max_epochs=1, gradient_clip_val=0.0).gradient_clip_val is None
    # (None: Lightning's default, "norm"; a LightningCLI config writes it as `gradient_clip_algorithm: null`)
    for spelt, algorithm in (("NORM", "norm"), ("Value", "value"), (None, "norm")):
        t = Trainer(max_epochs=1, gradient_clip_val=0.5, gradient_clip_algorithm=spelt)
        assert t.gradient_clip_algorithm == algorithm
    assert Trainer(max_epochs=1, fast_dev_run=0).fast_dev_run == 0  # off: the whole epoch trains
    t = trainer(tmp_path / "fdr", max_epochs=1, fast_dev_run=0)
    t.fit(TinyClassifier(), make_batches())
    assert t.global_step == 6
    mc = ModelCheckpoint(dirpath=tmp_path / "ck", every_n_epochs=0, save_last=True)
    trainer(tmp_path / "ck", max_epochs=2, callbacks=[mc], enable_checkpointing=True).fit(
        TinyClassifier(), make_batches()
    )
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["last"]  # no epoch saves
    ModelCheckpoint(every_n_epochs=0, every_n_train_steps=5)  # (0 is off: not a second trigger)
    for bad in ({"gradient_clip_val": -1.0}, {"fast_dev_run": -1}):
        with pytest.raises(ValueError):
            Trainer(max_epochs=1, **bad)


def test_track_grad_norm_takes_lightning_1s_off_and_l2_and_refuses_another_norm(tmp_path):
    """Read as a bool, Lightning 1's track_grad_norm=-1 (its "no tracking") turned the tracking on, and 1 or
    'inf' logged the L2 norm under grad_norm as if it were the norm asked for."""
    for value, tracked in ((-1, False), (2, True), (True, True)):
        t = trainer(tmp_path / str(value), max_epochs=1, track_grad_norm=value)
        t.fit(TinyClassifier(), make_batches())
        assert ("grad_norm" in t.callback_metrics) is tracked
    for other_norm in (1, "inf", 0.5):
        with pytest.raises(ValueError, match=rf"track_grad_norm={other_norm!r}\): expected True or False"):
            Trainer(max_epochs=1, track_grad_norm=other_norm)


def test_a_gradient_clip_val_that_is_no_number_is_a_type_error_naming_it(tmp_path):
    """Lightning 2.6.6 raises TypeError("`gradient_clip_val` should be an int or a float. Got (1, 2).")
    (measured); a ValueError here slipped past a caller's `except TypeError`. A negative number stays a
    ValueError, as in Lightning (its MisconfigurationException)."""
    for bad in ((1, 2), "0.5", [1.0]):
        with pytest.raises(TypeError, match=r"Trainer\(gradient_clip_val=.*\): expected a number > 0"):
            Trainer(max_epochs=1, gradient_clip_val=bad)
    with pytest.raises(ValueError):
        Trainer(max_epochs=1, gradient_clip_val=-0.5)

    class SetsATuple(Callback):
        def on_train_epoch_start(self, trainer, module):
            trainer.gradient_clip_val = (1, 2)

    with pytest.raises(TypeError, match=r"trainer.gradient_clip_val=\(1, 2\) .* set during fit"):
        trainer(tmp_path, max_epochs=1, callbacks=[SetsATuple()]).fit(TinyClassifier(), make_batches())


@pytest.mark.parametrize("algorithm", ["norm", "value"])
def test_a_nan_gradient_clip_val_is_refused_naming_it(tmp_path, algorithm):
    """NaN passed the check (`nan < 0` is False): the clipped gradients were NaN, so updates were skipped as
    non-finite, and the warning about them advised setting gradient_clip_val."""
    with pytest.raises(ValueError, match=r"Trainer\(gradient_clip_val=nan\): expected a number > 0"):
        trainer(tmp_path, max_epochs=1, gradient_clip_val=float("nan"), gradient_clip_algorithm=algorithm)


@pytest.mark.parametrize("value", ["00:00:10:00", {"minutes": 10}, datetime.timedelta(minutes=10)])
def test_a_time_based_val_check_interval_says_it_is_not_supported_and_what_to_use(value):
    """Lightning 2.6's time-based interval was refused as if it were a bad number."""
    with pytest.raises(
        ValueError, match=r"time-based interval .* is not supported.*max_time.*train_time_interval"
    ):
        Trainer(max_epochs=1, val_check_interval=value)


@pytest.mark.parametrize(
    "name", ["compile", "enable_checkpointing", "enable_progress_bar", "nonfinite_guard", "debug_lazy_eval"]
)
def test_an_on_off_flag_given_text_is_refused_naming_it(name):
    # Read by its truth, Trainer(compile="false") compiled and enable_checkpointing="no" saved checkpoints,
    # where max_epochs="3" or enable_model_summary="no" were refused by name.
    import numpy as np

    with pytest.raises(ValueError, match=rf"Trainer\({name}='false'\): expected True or False"):
        Trainer(**{name: "false"})
    assert getattr(Trainer(**{name: np.False_}), name) is False
    # A script written before the check, passing 0 or 1, runs as it did; another number is refused.
    assert getattr(Trainer(**{name: 0}), name) is False and getattr(Trainer(**{name: np.int64(1)}), name)
    with pytest.raises(ValueError, match=rf"Trainer\({name}=2\): expected True or False"):
        Trainer(**{name: 2})


def test_lightnings_none_defaults_are_the_defaults(tmp_path):
    """Lightning's signature gives these flags None, meaning its default (a LightningCLI config's `null`).
    Here enable_checkpointing=None saved nothing, enable_progress_bar=None drew no bar and the other three
    were refused. Values from Lightning 2.6.6: Trainer(**{flag: None}) has checkpoint_callback a
    ModelCheckpoint, a progress bar, log_every_n_steps 50, num_sanity_val_steps 2, val_check_interval 1.0
    (a 4-batch epoch validates its 2 batches once, after the sanity check's 2)."""
    nones = dict.fromkeys(
        ["enable_checkpointing", "enable_progress_bar", "log_every_n_steps", "num_sanity_val_steps"]
    )
    t = Trainer(max_epochs=1, default_root_dir=tmp_path, val_check_interval=None, **nones)
    assert t.checkpoint_callback is not None and t.progress_bar_callback is not None
    assert (t.log_every_n_steps, t.num_sanity_val_steps, t.val_check_interval) == (50, 2, 1.0)
    validated = []

    class Count(Callback):
        def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx=0):
            validated.append(trainer.sanity_checking)

    t = Trainer(
        max_epochs=1, default_root_dir=tmp_path, callbacks=[Count()], val_check_interval=None, **nones
    )
    t.fit(TinyClassifier(), make_batches(64, 16), make_batches(32, 16, seed=1))
    assert validated == [True, True, False, False]
    assert (tmp_path / "checkpoints" / "last" / "model.safetensors").is_file()


def test_enable_autolog_hparams_false_sends_the_loggers_no_hyperparameters(tmp_path):
    """Lightning 2.6.6's enable_autolog_hparams=False (its way to log them by hand) was refused ("Lightning's
    flag has no counterpart here"). As there, True (the default) sends them at each stage, False none."""
    from tasks import RecordingLogger

    class WithHparams(TinyClassifier):
        def __init__(self, lr: float = 0.01):
            super().__init__()
            self.save_hyperparameters()

    for autolog in (True, False):
        logger = RecordingLogger()
        t = trainer(tmp_path / str(autolog), max_epochs=1, logger=logger, enable_autolog_hparams=autolog)
        t.fit(WithHparams(), make_batches())
        t.validate(WithHparams(), make_batches())
        logged = [k for params in logger.hparams for k in params if k.startswith("hparams")]
        assert logged == (["hparams/lr", "hparams/lr"] if autolog else [])
    with pytest.raises(ValueError, match=r"Trainer\(enable_autolog_hparams='no'\): expected True or False"):
        Trainer(enable_autolog_hparams="no")


def test_fast_dev_run_reports_the_step_limit_and_no_sanity_check_it_runs_with(tmp_path):
    """A callback or schedule reading the Trainer's flags under fast_dev_run saw `max_steps` None and
    `num_sanity_val_steps` 2, values the smoke run does not use. Lightning 2.6.6 gives fast_dev_run=4
    `max_steps` 4, `num_sanity_val_steps` 0, `max_epochs` 1 (and fast_dev_run=True: 1, 0, 1)."""
    seen = {}

    class Reads(Callback):
        def on_train_start(self, trainer, pl_module):
            seen.update(steps=trainer.max_steps, sanity=trainer.num_sanity_val_steps)

    t = trainer(tmp_path, max_epochs=5, num_sanity_val_steps=3, fast_dev_run=4, callbacks=[Reads()])
    assert (t.max_steps, t.num_sanity_val_steps, t.max_epochs) == (4, 0, 1)
    t.fit(TinyClassifier(), make_batches())
    assert seen == {"steps": 4, "sanity": 0}
    assert t.global_step == 4
    t = Trainer(fast_dev_run=True)
    assert (t.max_steps, t.num_sanity_val_steps, t.max_epochs) == (1, 0, 1)


def test_fast_dev_run_shows_its_batches_as_the_limits(tmp_path):
    """Lightning 2.6.6: under fast_dev_run=3 `trainer.limit_train_batches` (val, test, predict too) is 3, and 1
    under fast_dev_run=True; they read 1.0 (every batch) here, which the smoke run does not use."""
    t = trainer(tmp_path, fast_dev_run=3, limit_val_batches=0.5)
    limits = (t.limit_train_batches, t.limit_val_batches, t.limit_test_batches, t.limit_predict_batches)
    assert limits == (3, 3, 3, 3)
    t = trainer(tmp_path, fast_dev_run=True)
    assert (t.limit_train_batches, t.limit_test_batches) == (1, 1)
    assert trainer(tmp_path).limit_train_batches == 1.0


@pytest.mark.parametrize("given, kept", [(True, True), (1, True), (5, 5), (False, False), (0, 0)])
def test_trainer_fast_dev_run_reads_as_lightning_keeps_it(tmp_path, given, kept):
    """`trainer.fast_dev_run` read the batch count (1 for True); Lightning 2.6.6 keeps True for True and 1,
    and the value given otherwise (5, False, 0). The limits and max_steps still read the batches."""
    t = trainer(tmp_path, fast_dev_run=given)
    assert t.fast_dev_run == kept and type(t.fast_dev_run) is type(kept)
    batches = int(given)
    assert t.limit_train_batches == (batches or 1.0) and type(t.limit_train_batches) is type(batches or 1.0)
    if batches:
        assert t.max_steps == batches and type(t.max_steps) is int
        t.fit(TinyClassifier(), make_batches())
        assert t.global_step == batches


def test_a_whole_float_above_one_is_a_batch_count_as_in_lightning(tmp_path):
    """Lightning 2.6.6 reads `limit_test_batches=1e50` (its test_dataloaders.py) or `val_check_interval=2.0` as
    int batch counts (`_determine_batch_limits`: a float > 1 with no fraction); they were refused here."""
    t = trainer(tmp_path, max_epochs=1, limit_test_batches=1e50, limit_train_batches=4.0)
    t.fit(TinyClassifier(), make_batches(96, 16))
    assert (t.limit_train_batches, t.num_training_batches) == (4, 4)
    t.test(TinyClassifier(), make_batches(48, 16))
    assert t.num_test_batches == 3  # (all the loader's 3 batches)
    settings = trainer(tmp_path, val_check_interval=2.0, overfit_batches=3.0)
    assert (settings.val_check_interval, settings.overfit_batches) == (2, 3)
    assert type(settings.val_check_interval) is int
    with pytest.raises(ValueError, match=r"limit_val_batches=1.5\): expected None, an int"):
        trainer(tmp_path, limit_val_batches=1.5)
