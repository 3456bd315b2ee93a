"""Seed 003's callbacks (``on_epoch_end(trainer, state)``, ...) through `create_trainer`.

The seed's ``from training.callbacks import Callback`` is ``from audiotrain.train.callbacks import Callback``.
"""

from audiotrain import create_trainer
from audiotrain.declarative import ConfiguredTrainer, TrainResult
from audiotrain.train import checkpoint as ckpt
from audiotrain.train import hooks
from audiotrain.train.callbacks import Callback
from audiotrain.training_hooks import TrainingHookAdapter, TrainingState

import pytest

from tests.test_seed003_declarative import Points, TinyNet, batches


def quick(callbacks, tmp_path, **overrides):
    """A quick_test trainer of 2 epochs of 2 batches (validation: 1 batch) with `callbacks`."""
    settings = dict(num_epochs=2, limit_train_batches=None, limit_val_batches=None, run_dir=tmp_path / "run")
    return create_trainer(TinyNet(), "quick_test", callbacks=callbacks, **{**settings, **overrides})


def test_seed003_custom_callback_on_epoch_end_is_called_with_the_state(tmp_path, capsys):
    seen = []
    # --- seed 003, "Custom Callbacks" (model built above) ----------------------------------------------
    from audiotrain.train.callbacks import Callback

    class CustomCallback(Callback):
        def on_epoch_end(self, trainer, state):
            print(f"Epoch {state.epoch} completed!")
            seen.append((trainer, state.epoch, state.step, dict(state.metrics)))

    trainer = quick([CustomCallback()], tmp_path)
    # --- end of seed code --------------------------------------------------------------------------------
    trainer.train(batches(), batches(n=16, seed=1))
    assert "Epoch 0 completed!\n" in capsys.readouterr().out
    assert [(t, epoch, step) for t, epoch, step, _ in seen] == [(trainer, 0, 2), (trainer, 1, 4)]
    history = trainer.trainer.history
    for k, (_, _, _, metrics) in enumerate(seen):  # the epoch's means, its validation's included
        assert metrics["train_loss"] == pytest.approx(history["train_loss"][k])
        assert metrics["val_loss"] == pytest.approx(history["val_loss"][k])


class Recorder(Callback):
    """Every seed 003 hook, and two of Lightning's."""

    def __init__(self):
        self.calls = []

    def on_train_begin(self, trainer, state):
        self.calls.append(("train_begin", state.epoch))

    def on_epoch_begin(self, trainer, state):
        self.calls.append(("epoch_begin", state.epoch))

    def on_batch_begin(self, trainer, state, batch):
        self.calls.append(("batch_begin", state.step, len(batch[0])))

    def on_batch_end(self, trainer, state, loss):
        self.calls.append(("batch_end", state.step, float(loss) > 0))

    def on_evaluate_begin(self, trainer, state):
        self.calls.append(("evaluate_begin",))

    def on_evaluate_end(self, trainer, state, metrics):
        self.calls.append(("evaluate_end", sorted(metrics)))

    def on_epoch_end(self, trainer, state):
        self.calls.append(("epoch_end", state.epoch))

    def on_train_end(self, trainer, state, result):
        self.calls.append(("train_end", type(result).__name__, state.epoch))

    def on_fit_start(self, trainer, module):  # Lightning's, called as usual
        self.calls.append(("fit_start", type(module).__name__))


def test_every_seed_hook_is_called_in_order_and_the_sanity_check_is_not_an_evaluation(tmp_path):
    recorder = Recorder()
    trainer = quick([recorder], tmp_path, num_epochs=1)
    result = trainer.train(batches(), batches(n=16, seed=1))
    validation = [("evaluate_begin",), ("evaluate_end", ["val_accuracy", "val_loss"])]
    assert recorder.calls == [
        ("fit_start", "TinyNet"),
        ("train_begin", 0),
        ("epoch_begin", 0),
        ("batch_begin", 0, 16),
        ("batch_end", 1, True),
        ("batch_begin", 1, 16),
        ("batch_end", 2, True),
        *validation,  # (the sanity check before training is not one)
        ("epoch_end", 0),
        ("train_end", "TrainResult", 1),
    ]
    assert isinstance(result, TrainResult)
    recorder.calls.clear()
    trainer.evaluate(batches(n=16, seed=1))
    assert recorder.calls == [("evaluate_begin",), ("evaluate_end", ["test_accuracy", "test_loss"])]
    # The finished run resumed: nothing to train, so no Lightning on_train_start (Lightning 2.6.6's fit loop
    # skips it), yet the seed's on_train_begin still comes before its on_train_end (the two are a pair).
    recorder.calls.clear()
    with pytest.warns(UserWarning, match="nothing to train"):
        trainer.train(batches(), batches(n=16, seed=1), ckpt_path="last")
    assert recorder.calls == [("fit_start", "TinyNet"), ("train_begin", 1), ("train_end", "TrainResult", 1)]


def test_seed_hooks_run_after_the_sanity_check_and_after_the_objects_lightning_hook(tmp_path):
    calls = []

    class Both(Callback):  # seed 003's hooks and Lightning's on one object
        def on_sanity_check_end(self, trainer, module):
            calls.append("sanity_check_end")

        def on_train_begin(self, trainer, state):
            calls.append("train_begin")

        def on_train_epoch_end(self, trainer, module):
            calls.append("train_epoch_end")

        def on_epoch_end(self, trainer, state):
            calls.append("epoch_end")

    quick([Both()], tmp_path, num_epochs=1).train(batches(), batches(n=16, seed=1))
    # on_train_begin: after the sanity check, before epoch 0; at every hook Lightning's first, then the seed's
    assert calls == ["sanity_check_end", "train_begin", "train_epoch_end", "epoch_end"]


def test_a_hook_stops_training_with_state_should_stop(tmp_path):
    class StopAfterFirstEpoch(Callback):
        def on_epoch_end(self, trainer, state):
            state.should_stop = True

    trainer = quick([StopAfterFirstEpoch()], tmp_path, num_epochs=3)
    result = trainer.train(batches(), batches(n=16, seed=1))
    assert result.history["epoch"] == [0]


def test_the_shared_trainer_sees_an_audiotrain_callback_even_where_it_refuses_on_epoch_end(
    tmp_path, monkeypatch
):
    # The generic Trainer refuses Lightning 1.x's on_epoch_end; create_trainer's adapter does not define it.
    refused = {**hooks.UNSUPPORTED, "on_epoch_end": ("Lightning 1.x", "on_train_epoch_end")}
    monkeypatch.setattr(hooks, "UNSUPPORTED", refused)
    epochs = []

    class CustomCallback(Callback):
        def on_epoch_end(self, trainer, state):
            epochs.append(state.epoch)

    user = CustomCallback()
    trainer = quick([user], tmp_path)
    (adapter,) = [cb for cb in trainer.trainer.callbacks if isinstance(cb, TrainingHookAdapter)]
    assert adapter.callback is user and user not in trainer.trainer.callbacks
    assert "on_epoch_end" not in vars(type(adapter))
    trainer.train(batches(), batches(n=16, seed=1))
    assert epochs == [0, 1]


def test_lightning_on_train_end_is_called_as_lightnings_and_plain_callbacks_are_not_wrapped(tmp_path):
    calls = []

    class LightningStyle(Callback):
        def on_train_end(self, trainer, module):
            calls.append(type(module).__name__)

    lightning = LightningStyle()
    trainer = quick([lightning], tmp_path, num_epochs=1)
    assert lightning in trainer.trainer.callbacks  # nothing of seed 003's: given to the Trainer as it is
    trainer.train(batches(), batches(n=16, seed=1))
    assert calls == ["TinyNet"]


def test_an_audiotrain_callback_without_seed_hooks_is_given_to_the_trainer_as_it_is(tmp_path):
    class StartsFits(Callback):  # only Lightning's hooks; the base Callback's on_train_end is no seed hook
        def on_fit_start(self, trainer, module): ...

    user = StartsFits()
    trainer = quick([user], tmp_path, num_epochs=1)
    assert user in trainer.trainer.callbacks
    assert not [cb for cb in trainer.trainer.callbacks if isinstance(cb, TrainingHookAdapter)]


def test_one_callback_alone_is_taken_as_the_trainer_takes_it(tmp_path, capsys):
    class PlainSeedCallback:  # seed 003's callbacks need not subclass Callback
        def on_epoch_end(self, trainer, state):
            print(f"Epoch {state.epoch} completed!")

    class StartsFits(Callback):
        def on_fit_start(self, trainer, module): ...

    # Lightning's (and the shared Trainer's) callbacks= is a list or one callback.
    quick(PlainSeedCallback(), tmp_path).train(batches(), batches(n=16, seed=1))
    assert "Epoch 1 completed!\n" in capsys.readouterr().out
    user = StartsFits()
    assert user in quick(user, tmp_path / "b", num_epochs=1).trainer.callbacks


def test_a_seed_callbacks_lightning_setup_and_teardown_are_called(tmp_path):
    # The adapter forwards the Lightning hooks the same object defines: a seed callback that opens a file in
    # setup and closes it in teardown gets both, around its seed hooks.
    calls = []

    class OpensAFile(Callback):
        def setup(self, trainer, module, stage):
            calls.append(("setup", stage))

        def on_epoch_end(self, trainer, state):
            calls.append(("on_epoch_end", state.epoch))

        def teardown(self, trainer, module, stage):
            calls.append(("teardown", stage))

    trainer = quick([OpensAFile()], tmp_path, num_epochs=1)
    trainer.train(batches(), batches(n=16, seed=1))
    assert calls == [("setup", "fit"), ("on_epoch_end", 0), ("teardown", "fit")]


def test_seed_hooks_without_a_place_and_lightning_hooks_never_called_are_refused(tmp_path):
    class Logs(Callback):
        def on_epoch_end(self, trainer, state): ...

        def on_log(self, trainer, state, logs): ...

    with pytest.raises(
        TypeError, match=r"Logs.on_log \(a seed 003 hook\) would never be called.*state.metrics"
    ):
        quick([Logs()], tmp_path)

    class Backward(Callback):
        def on_epoch_end(self, trainer, state): ...

        def on_before_backward(self, trainer, module, loss): ...

    with pytest.raises(TypeError, match="Backward.on_before_backward would never be called"):
        quick([Backward()], tmp_path)


def test_a_stateful_seed_callback_is_saved_under_its_key_and_stateless_ones_may_repeat(tmp_path):
    class Counter(Callback):
        def __init__(self):
            self.epochs = 0

        def on_epoch_end(self, trainer, state):
            self.epochs += 1

        def state_dict(self):
            return {"epochs": self.epochs}

        def load_state_dict(self, state):
            self.epochs = state["epochs"]

    class Quiet(Callback):
        def on_epoch_end(self, trainer, state): ...

    trainer = quick([Counter(), Quiet(), Quiet()], tmp_path)
    result = trainer.train(batches(), batches(n=16, seed=1))
    assert ckpt.read_state(result.last_checkpoint)["callbacks"]["Counter"] == {"epochs": 2}
    again = Counter()
    resumed = quick([again], tmp_path, num_epochs=3)  # the same run folder: the run goes on there
    resumed.train(batches(), batches(n=16, seed=1), ckpt_path=str(result.last_checkpoint))
    assert again.epochs == 3  # 2 restored, then the third epoch


def test_each_cross_validation_fold_calls_its_own_copy_with_its_own_trainer(tmp_path):
    owners = []

    class Owners(Callback):
        def on_train_begin(self, trainer, state):
            owners.append(trainer)

    trainer = quick([Owners()], tmp_path, num_epochs=1, batch_size=8)
    trainer.train_with_cv(Points(), folds=2, log=lambda s: None)
    assert len(owners) == 2 and all(isinstance(t, ConfiguredTrainer) and t is not trainer for t in owners)
    assert owners[0] is not owners[1]


def test_state_names():
    state = TrainingState(epoch=2, global_step=10, metrics={"train_loss": 0.5, "val_loss": 0.7})
    assert (state.step, state.train_loss, state.val_loss, state.should_stop) == (10, 0.5, 0.7, False)


@pytest.mark.parametrize(
    "hook, arguments",
    [
        ("on_batch_end", "on_batch_end(self, trainer, state, loss)"),
        ("on_evaluate_end", "on_evaluate_end(self, trainer, state, metrics)"),
        ("on_epoch_begin", "on_epoch_begin(self, trainer, state)"),
    ],
)
def test_a_seed_hook_that_cannot_take_its_arguments_is_refused_by_create_trainer(tmp_path, hook, arguments):
    """It failed at the first batch of the fit with a bare TypeError ('takes 3 positional arguments but 4
    were given') from inside the adapter."""
    wrong = {
        "on_batch_end": lambda self, trainer, state: None,
        "on_evaluate_end": lambda self, trainer: None,
        "on_epoch_begin": lambda self, trainer, state, extra: None,
    }
    Wrong = type("Wrong", (), {hook: wrong[hook]})
    with pytest.raises(TypeError) as caught:
        quick([Wrong()], tmp_path)
    assert str(caught.value).startswith(f"Wrong.{hook}(")
    assert f"cannot take the arguments it is called with: {arguments}" in str(caught.value)
    assert not (tmp_path / "run").exists()
    # Defaults and *args take them.
    Flexible = type("Flexible", (), {hook: lambda self, trainer, state, *rest: None})
    quick([Flexible()], tmp_path)


def test_a_warning_filter_set_while_a_fold_is_built_outlives_the_cross_validation(tmp_path):
    """Each fold's trainer was built under `warnings.catch_warnings`, which puts back the whole process's
    filter list it found: a filter that the module factory (a library it imports) or another thread of a
    sweep added meanwhile was dropped as the fold started."""
    import warnings

    def module_with_its_own_filter():
        warnings.filterwarnings("ignore", message="a filter set as a fold's module is built")
        return TinyNet()

    trainer = quick([], tmp_path, num_epochs=1, batch_size=8)
    try:
        trainer.train_with_cv(
            Points(), folds=2, module_factory=module_with_its_own_filter, log=lambda s: None
        )
        assert any(
            f[1] and f[1].pattern == "a filter set as a fold's module is built" for f in warnings.filters
        )
    finally:
        warnings.filters[:] = [
            f for f in warnings.filters if not (f[1] and "a fold's module" in f[1].pattern)
        ]


def test_a_train_that_raised_leaves_the_next_ones_seed_hooks_in_their_pair():
    # A train() raising after on_train_start never reached train_finished; the next fit, with nothing to
    # train, must still call the seed's on_train_begin before its on_train_end.
    class Fit:  # what the adapter reads of the Trainer
        current_epoch, global_step, callback_metrics, should_stop = 1, 2, {}, False

    recorder = Recorder()
    adapter = TrainingHookAdapter(recorder, owner=None)
    adapter.on_fit_start(Fit(), None)
    adapter.on_train_start(Fit(), None)  # ... and the first train raised here
    recorder.calls.clear()
    adapter.on_fit_start(Fit(), None)  # the second: nothing to train, so no on_train_start
    adapter.train_finished(Fit(), result=TrainResult)
    assert [c[0] for c in recorder.calls] == ["fit_start", "train_begin", "train_end"]
