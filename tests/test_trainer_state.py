"""`Trainer.state` (train/trainer_state.py) and Lightning's booleans over it (`training`, `validating`,
`sanity_checking`, `testing`, `predicting`): the values Lightning 2.6 gives at each hook, and the status
string `trainer.state` was before it had `.status`, `.fn` and `.stage`."""

import copy
import json
import pickle
import signal

from audiotrain.train.callback import Callback
from audiotrain.train.trainer_state import TrainerState

import pytest
from tasks import TinyClassifier, make_batches, quiet_trainer


def test_the_state_is_still_the_status_string():
    state = TrainerState("finished", "fit", None)
    assert state == "finished" and str(state) == "finished" and f"{state}" == "finished"
    assert json.dumps({"state": state}) == '{"state": "finished"}'
    assert {"finished": 1}[state] == 1
    assert (state.status, state.fn, state.stage) == ("finished", "fit", None)
    assert state.finished and state.stopped and not TrainerState("running", "test", "test").stopped
    assert repr(state) == "TrainerState(status='finished', fn='fit', stage=None)"
    for copied in (copy.copy(state), pickle.loads(pickle.dumps(state))):
        assert (copied.status, copied.fn, copied.stage) == ("finished", "fit", None)
    with pytest.raises(ValueError, match=r"TrainerState: no such state \(status='done'"):
        TrainerState("done")


def test_status_fn_and_stage_answer_value_as_lightnings_enums():
    """A callback ported from Lightning that read `trainer.state.stage.value` failed with
    "AttributeError: 'str' object has no attribute 'value'"; Lightning 2.6.6's RunningStage, TrainerFn
    and TrainerStatus give "validate", "fit" and "running" there (and still compare equal to them)."""
    state = TrainerState("running", "fit", "validate")
    assert (state.status.value, state.fn.value, state.stage.value) == ("running", "fit", "validate")
    assert state.stage == "validate" and json.dumps(state.stage) == '"validate"'
    assert TrainerState("finished", "fit", None).stage is None


class Snapshots(Callback):
    """What a Lightning callback reads at each hook: status, fn, stage and the five booleans."""

    def __init__(self):
        self.seen = []

    def snap(self, trainer, where):
        s = trainer.state
        flags = (
            trainer.training,
            trainer.validating,
            trainer.sanity_checking,
            trainer.testing,
            trainer.predicting,
        )
        self.seen.append((where, s.status, s.fn, s.stage, *flags))

    def setup(self, trainer, module, stage):
        self.snap(trainer, f"setup({stage})")

    def on_sanity_check_start(self, trainer, module):
        self.snap(trainer, "on_sanity_check_start")

    def on_train_start(self, trainer, module):
        self.snap(trainer, "on_train_start")

    def on_validation_start(self, trainer, module):
        self.snap(trainer, f"on_validation_start n={trainer.num_val_batches}")

    def on_train_epoch_end(self, trainer, module):
        self.snap(trainer, "on_train_epoch_end")

    def on_test_start(self, trainer, module):
        self.snap(trainer, f"on_test_start n={trainer.num_test_batches}")

    def on_predict_start(self, trainer, module):
        self.snap(trainer, f"on_predict_start n={trainer.num_predict_batches}")

    def teardown(self, trainer, module, stage):
        self.snap(trainer, f"teardown({stage})")


def test_state_and_stage_flags_at_each_hook_are_lightnings(tmp_path):
    """The table Lightning 2.6.6 gives for the same calls (a 1-epoch fit with a 1-batch sanity check, then
    validate, test and predict, each limited to 3 batches)."""
    snaps = Snapshots()
    t = quiet_trainer(
        tmp_path,
        max_epochs=1,
        callbacks=[snaps],
        num_sanity_val_steps=1,
        limit_val_batches=3,
        limit_test_batches=3,
        limit_predict_batches=3,
    )
    snaps.snap(t, "init")
    model, batches = TinyClassifier(), make_batches(16, batch_size=2)
    t.fit(model, batches, batches)
    snaps.snap(t, "after fit")
    t.validate(model, batches)
    snaps.snap(t, "after validate")
    t.test(model, batches)
    snaps.snap(t, "after test")
    t.predict(model, batches)
    snaps.snap(t, "after predict")
    T, F = True, False
    assert snaps.seen == [
        ("init", "initializing", None, None, F, F, F, F, F),
        ("setup(fit)", "running", "fit", "train", T, F, F, F, F),
        ("on_sanity_check_start", "running", "fit", "sanity_check", F, F, T, F, F),
        # (the fit's validation count, as Lightning's; the check's is num_sanity_val_batches)
        ("on_validation_start n=3", "running", "fit", "sanity_check", F, F, T, F, F),
        ("on_train_start", "running", "fit", "train", T, F, F, F, F),
        # (the batch count of this validation, not the sanity check's, when it starts)
        ("on_validation_start n=3", "running", "fit", "validate", F, T, F, F, F),
        ("on_train_epoch_end", "running", "fit", "train", T, F, F, F, F),
        ("teardown(fit)", "running", "fit", "train", T, F, F, F, F),
        ("after fit", "finished", "fit", None, F, F, F, F, F),
        ("setup(validate)", "running", "validate", "validate", F, T, F, F, F),
        ("on_validation_start n=3", "running", "validate", "validate", F, T, F, F, F),
        ("teardown(validate)", "running", "validate", "validate", F, T, F, F, F),
        ("after validate", "finished", "validate", None, F, F, F, F, F),
        ("setup(test)", "running", "test", "test", F, F, F, T, F),
        ("on_test_start n=3", "running", "test", "test", F, F, F, T, F),
        ("teardown(test)", "running", "test", "test", F, F, F, T, F),
        ("after test", "finished", "test", None, F, F, F, F, F),
        ("setup(predict)", "running", "predict", "predict", F, F, F, F, T),
        ("on_predict_start n=3", "running", "predict", "predict", F, F, F, F, T),
        ("teardown(predict)", "running", "predict", "predict", F, F, F, F, T),
        ("after predict", "finished", "predict", None, F, F, F, F, F),
    ]
    assert t.state == "finished"  # (what `trainer.state` compared equal to before)
    assert t.evaluating is False


class FailsIn(TinyClassifier):
    def __init__(self, hook):
        super().__init__()
        self.hook = hook

    def setup(self, stage):
        if self.hook == "setup":
            raise RuntimeError("setup failed")

    def test_step(self, batch, batch_idx=None):
        raise RuntimeError("test_step failed")


@pytest.mark.parametrize("hook", ["setup", "test_step"])
def test_a_stage_that_raises_leaves_the_state_failed(tmp_path, hook):
    t = quiet_trainer(tmp_path)
    with pytest.raises(RuntimeError, match="failed"):
        t.test(FailsIn(hook), make_batches(8, batch_size=4))
    assert (t.state.status, t.state.fn, t.state.stage) == ("failed", "test", None)
    assert t.state == "failed" and t.state.stopped and not t.state.finished


def test_lightnings_stage_setters(tmp_path):
    t = quiet_trainer(tmp_path)
    t.training = True
    assert t.state.stage == "train" and t.training
    t.validating = False  # another stage's False leaves this one
    assert t.training
    t.sanity_checking = True
    assert t.sanity_checking and t.evaluating and not t.training
    t.sanity_checking = False
    assert t.state.stage is None


class RaisesAtStep(Callback):
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == 3:
            raise RuntimeError("boom")


class SeesTheException(Callback):
    def __init__(self):
        self.seen = None

    def on_exception(self, trainer, module, error):
        self.seen = (trainer.state.status, trainer.state.fn, trainer.state.stage)


@pytest.mark.parametrize("method", ["fit", "test"])
def test_on_exception_sees_the_stage_failed_already(tmp_path, method):
    """Lightning 2.6.6 sets the status before `on_exception` ("interrupted", audiotrain's "failed"): a
    callback saw "running" there, and took a crash for a run still going."""
    seer = SeesTheException()
    t = quiet_trainer(tmp_path, max_epochs=2, callbacks=[RaisesAtStep(), seer])
    batches = make_batches(16, batch_size=2)
    with pytest.raises(RuntimeError):
        if method == "fit":
            t.fit(TinyClassifier(), batches)
        else:
            t.test(FailsIn("test_step"), batches)
    stage = "train" if method == "fit" else "test"
    assert seer.seen == ("failed", method, stage)
    # (unlike Lightning's, `interrupted` means a stop signal, which a resume continues: not a crash)
    assert (t.state.status, t.interrupted) == ("failed", False)


class CtrlCAtStep2(Callback):
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == 2:
            signal.raise_signal(signal.SIGINT)  # as a terminal's Ctrl-C: stops after this step


class SeesTheInterrupt(Callback):
    def __init__(self):
        self.seen = None

    def on_exception(self, trainer, module, error):
        # (a KeyboardInterrupt, as Lightning's for Ctrl-C; here the subclass that names the signal heard)
        kind = "KeyboardInterrupt" if isinstance(error, KeyboardInterrupt) else type(error).__name__
        self.seen = (kind, trainer.state.status, trainer.state.fn, trainer.interrupted)
        self.signum = getattr(error, "signum", None)


def test_on_exception_sees_a_ctrl_c_stop_as_interrupted_already(tmp_path):
    """Lightning 2.6.6 sets the status before `on_exception` hears of a Ctrl-C: there it read
    ('KeyboardInterrupt', 'interrupted', 'fit', True). Here it read 'running', so a callback that tells a
    stop by hand from a crash there (to mark the run resumable) could not."""
    seer = SeesTheInterrupt()
    t = quiet_trainer(tmp_path, max_epochs=2, callbacks=[CtrlCAtStep2(), seer])
    t.fit(TinyClassifier(), make_batches(16, batch_size=2))
    assert seer.seen == ("KeyboardInterrupt", "interrupted", "fit", True)
    assert seer.signum == signal.SIGINT
    assert (t.state.status, t.interrupted, t.global_step) == ("interrupted", True, 2)


class CtrlCAtTheFirstBatch(Callback):
    def __init__(self):
        self.seen = []

    def _stop(self, batch_idx):
        if batch_idx == 0:
            signal.raise_signal(signal.SIGINT)  # as a terminal's Ctrl-C

    def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx=0):
        self._stop(batch_idx)

    def on_test_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx=0):
        self._stop(batch_idx)

    def on_predict_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx=0):
        self._stop(batch_idx)

    def on_exception(self, trainer, module, error):
        self.seen.append((type(error).__name__, trainer.state.status, trainer.interrupted))

    def teardown(self, trainer, module, stage):
        self.seen.append(("teardown", stage, trainer.state.status))


@pytest.mark.parametrize("method", ["validate", "test", "predict"])
@pytest.mark.usefixtures("ctrl_c_raises")
def test_a_ctrl_c_in_an_evaluation_stage_reads_as_interrupted(tmp_path, method):
    """Values Lightning 2.6.6 gave for a SIGINT at the first batch of `trainer.test` / `predict`:
    on_exception heard ('KeyboardInterrupt', 'interrupted', True), and after it `trainer.state.status` was
    "interrupted" and `trainer.interrupted` True. Here they read "failed" and False, as for a crash."""
    stopper = CtrlCAtTheFirstBatch()
    t = quiet_trainer(tmp_path, callbacks=[stopper])
    with pytest.raises(KeyboardInterrupt):
        getattr(t, method)(TinyClassifier(), make_batches(8, batch_size=2))
    # (the teardown hooks, which Lightning's error path does not call, see the same status)
    assert stopper.seen == [("KeyboardInterrupt", "interrupted", True), ("teardown", method, "interrupted")]
    assert (t.state.status, t.interrupted) == ("interrupted", True)


class TwoCtrlCsAtStep2(SeesTheInterrupt):
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == 2:
            signal.raise_signal(signal.SIGINT)  # the first stops after this step and saves,
            signal.raise_signal(signal.SIGINT)  # the second, at once, aborts that

    def teardown(self, trainer, module, stage):
        self.torn_down = trainer.state.status


def test_a_second_ctrl_c_that_aborts_the_stop_still_reads_as_interrupted(tmp_path):
    """Lightning 2.6.6, two SIGINTs in a row at step 2 of a fit: on_exception heard ('KeyboardInterrupt',
    'interrupted', 'fit', True) and the fit ended "interrupted", trainer.interrupted True. Here the abort
    read as a crash, status "failed" (and the loggers' runs were closed "failed": MLflow's FAILED, not the
    KILLED README promises after Ctrl-C)."""
    from audiotrain.loggers import CSVLogger

    closed = []

    class Closes(CSVLogger):
        def finalize(self, status="success"):
            closed.append(status)
            super().finalize(status)

    seer = TwoCtrlCsAtStep2()
    t = quiet_trainer(tmp_path, max_epochs=2, callbacks=[seer], logger=Closes(tmp_path), log_every_n_steps=1)
    with pytest.raises(KeyboardInterrupt):
        t.fit(TinyClassifier(), make_batches(16, batch_size=2))
    assert seer.seen == ("KeyboardInterrupt", "interrupted", "fit", True)
    assert seer.signum == signal.SIGINT
    assert (seer.torn_down, closed) == ("interrupted", ["interrupted"])
    assert (t.state.status, t.interrupted, t.global_step) == ("interrupted", True, 2)


@pytest.mark.usefixtures("ctrl_c_raises")
def test_a_stage_after_a_ctrl_c_stopped_one_no_longer_reads_as_interrupted(tmp_path):
    """Lightning 2.6.6's `trainer.interrupted` is its status: after a Ctrl-C'd `validate`, a `test` that
    ran through reads False there. Here it read True for good, and a script's `if trainer.interrupted:
    sys.exit(130)` after that test took it as stopped. A fit's stop still reads True after a later stage."""
    stopper = CtrlCAtTheFirstBatch()
    t = quiet_trainer(tmp_path, callbacks=[stopper])
    with pytest.raises(KeyboardInterrupt):
        t.validate(TinyClassifier(), make_batches(8, batch_size=2))
    t.callbacks.remove(stopper)
    t.test(TinyClassifier(), make_batches(8, batch_size=2))
    assert (t.state.status, t.interrupted) == ("finished", False)

    class CtrlCInFit(Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if batch_idx == 1:
                signal.raise_signal(signal.SIGINT)

    t = quiet_trainer(tmp_path / "fit", max_epochs=1, callbacks=[CtrlCInFit()])
    t.fit(TinyClassifier(), make_batches(16, batch_size=2))
    t.test(TinyClassifier(), make_batches(8, batch_size=2))
    assert t.interrupted  # (the fit's, as documented: `if trainer.interrupted` after fit)
