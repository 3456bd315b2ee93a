"""A module's `on_save_checkpoint` / `on_load_checkpoint` and a DataModule's `state_dict()` /
`load_state_dict()` from the user's side, as Lightning code uses them: the hooks see the run's epoch and
step, and what they store comes back exactly or is refused at the first save, by hook and field."""

import json
from pathlib import Path

from audiotrain import CheckpointError, DataModule, Trainer
from audiotrain.train.callbacks import Callback

import numpy as np
import pytest
from tasks import TinyClassifier, make_batches


class Hooked(TinyClassifier):
    """Stores `extra` (its `on_save_checkpoint` adds it) and records what its hooks saw."""

    def __init__(self, extra=None):
        super().__init__()
        self.extra, self.saved, self.loaded = extra, [], []

    def on_save_checkpoint(self, checkpoint):
        self.saved.append(dict(checkpoint))
        checkpoint.update(self.extra or {})

    def on_load_checkpoint(self, checkpoint):
        self.loaded.append(dict(checkpoint))


def fit(root, model, epochs=1, **kw):
    t = Trainer(
        max_epochs=epochs, default_root_dir=root, enable_progress_bar=False, num_sanity_val_steps=0, **kw
    )
    t.fit(model, make_batches(32), make_batches(16, seed=1))
    return t


def test_module_hooks_see_epoch_and_step_and_get_their_entries_back(tmp_path):
    model = Hooked({"vocab": ["a", "b"], "counts": {"a": 2}})
    t = fit(tmp_path, model, epochs=2)
    assert [(s["epoch"], s["global_step"]) for s in model.saved] == [(0, 2), (1, 4)]
    restored = Hooked.load_from_checkpoint(t.checkpoint_callback.last_model_path)
    assert restored.loaded == [{"vocab": ["a", "b"], "counts": {"a": 2}, "epoch": 1, "global_step": 4}]


@pytest.mark.parametrize("stage", ["validate", "test", "predict"])
def test_a_stage_from_ckpt_path_gives_the_module_its_entries_as_lightning_does(tmp_path, stage):
    # Lightning's restore_model calls on_load_checkpoint for validate/test/predict too: a module that keeps a
    # vocabulary there would otherwise evaluate with its own, and nothing would say so.
    t = fit(tmp_path, Hooked({"vocab": ["a", "b"]}))
    path = t.checkpoint_callback.last_model_path
    fresh = Hooked()
    evaluator = Trainer(default_root_dir=tmp_path / "eval", enable_progress_bar=False, logger=False)
    getattr(evaluator, stage)(fresh, make_batches(16, seed=1), ckpt_path=path)
    assert [entry["vocab"] for entry in fresh.loaded] == [["a", "b"]]


@pytest.mark.parametrize("stage", ["validate", "test", "predict"])
def test_a_stage_from_ckpt_path_calls_the_callbacks_on_load_checkpoint_after_the_modules(tmp_path, stage):
    # Lightning 2.6.6's validate/test/predict(ckpt_path=...) call the module's on_load_checkpoint, then every
    # callback's (restore_callbacks), with the checkpoint: recorded there as [module, callback]. Here the
    # callbacks' was called only when fit resumed, so one that swaps in what it saved did nothing.
    t = fit(tmp_path, Hooked({"vocab": ["a", "b"]}))
    seen = []

    class Loads(Callback):
        def on_load_checkpoint(self, trainer, module, checkpoint):
            seen.append(("callback", "callbacks" in checkpoint, len(module.loaded)))

    fresh = Hooked()
    evaluator = Trainer(
        default_root_dir=tmp_path / "eval", enable_progress_bar=False, logger=False, callbacks=[Loads()]
    )
    getattr(evaluator, stage)(
        fresh, make_batches(16, seed=1), ckpt_path=t.checkpoint_callback.last_model_path
    )
    assert seen == [("callback", True, 1)]  # (the module's hook already ran: one entry in `loaded`)
    getattr(evaluator, stage)(fresh, make_batches(16, seed=1))  # (no ckpt_path: nothing loaded)
    assert len(seen) == 1


@pytest.mark.parametrize("fresh_trainer", [False, True])
@pytest.mark.parametrize("stage", ["validate", "test", "predict"])
def test_a_stage_from_ckpt_path_gives_the_callbacks_their_saved_state_as_lightning_does(
    tmp_path, stage, fresh_trainer
):
    # Lightning 2.6.6's validate/test/predict(ckpt_path=best, last or a path), after fit or in a new Trainer,
    # call each callback's on_load_checkpoint and then its load_state_dict with the state saved (a callback
    # whose state_dict counts its calls: [on_load_checkpoint, load_state_dict {'n': 3}] for the checkpoint its
    # 3rd call went into). Here load_state_dict ran only when fit resumed: a callback evaluating with what it
    # kept (an EMA's count, a best score) had its own state, not the checkpoint's.
    events = []

    class Counts(Callback):
        def __init__(self):
            self.n = 0

        def state_dict(self):
            self.n += 1
            return {"n": self.n}

        def load_state_dict(self, state):
            events.append(("load_state_dict", state))

        def on_load_checkpoint(self, trainer, module, checkpoint):
            events.append(("on_load_checkpoint",))

    t = fit(tmp_path, Hooked(), callbacks=[Counts()])
    path = t.checkpoint_callback.last_model_path
    saved = json.loads((Path(path) / "trainer_state.json").read_text())["callbacks"]["Counts"]
    events.clear()
    evaluator = t
    if fresh_trainer:
        evaluator = Trainer(
            default_root_dir=tmp_path / "eval", enable_progress_bar=False, logger=False, callbacks=[Counts()]
        )
    getattr(evaluator, stage)(Hooked(), make_batches(16, seed=1), ckpt_path=path)
    assert events == [("on_load_checkpoint",), ("load_state_dict", saved)]


@pytest.mark.parametrize("stage", ["fit", "validate", "test", "predict"])
def test_a_callbacks_on_load_checkpoint_finds_the_saved_epoch_and_global_step(tmp_path, stage):
    # Lightning 2.6.6's checkpoint dict holds them for every on_load_checkpoint: a test from the checkpoint
    # saved at the end of epoch 1 of 4 batches an epoch gave its callbacks checkpoint["epoch"] == 1 and
    # ["global_step"] == 8 (2 batches an epoch here: 4). Here the module's had them and a callback's got a
    # KeyError, though README says both have them.
    t = fit(tmp_path, Hooked(), epochs=2)
    seen = []

    class Loads(Callback):
        def on_load_checkpoint(self, trainer, module, checkpoint):
            seen.append((checkpoint["epoch"], checkpoint["global_step"]))

    again = Trainer(
        max_epochs=3,
        # (a resumed fit saves where the first did, as it must to rank its checkpoints against them)
        default_root_dir=tmp_path if stage == "fit" else tmp_path / "again",
        enable_progress_bar=False,
        logger=False,
        enable_checkpointing=stage == "fit",
        num_sanity_val_steps=0,
        callbacks=[Loads()],
    )
    loader = make_batches(32) if stage == "fit" else make_batches(16, seed=1)
    getattr(again, stage)(Hooked(), loader, ckpt_path=t.checkpoint_callback.last_model_path)
    assert seen == [(1, 4)]


@pytest.mark.parametrize(
    "extra, refusal",
    [
        ({"pair": (1, 2)}, r"Hooked.on_save_checkpoint: checkpoint\['pair'\] is a tuple"),
        ({"ids": {1: "a"}}, r"Hooked.on_save_checkpoint: checkpoint\['ids'\] has the key 1 \(int\)"),
        ({"seen": {1, 2}}, r"Hooked.on_save_checkpoint: checkpoint\['seen'\] is a set"),
        # Arrays JSON cannot hold, or gives back as lists, were refused without a name (objects, dates) or
        # came back as lists (text): each is now named with its dtype.
        (
            {"rows": {"ids": np.array([object()], dtype=object)}},
            r"checkpoint\['rows'\]\['ids'\] is a numpy.*object",
        ),
        (
            {"days": np.array(["2020-01-01"], dtype="datetime64[D]")},
            r"checkpoint\['days'\] is a numpy.*datetime64",
        ),
        ({"words": np.array(["a", "b"])}, r"checkpoint\['words'\] is a numpy array of dtype <U1"),
        ({"raw": [np.array([b"a"])]}, r"checkpoint\['raw'\]\[0\] is a numpy array of dtype \|S1"),
        ({"z": np.complex64(1j)}, r"checkpoint\['z'\] is a numpy complex64 scalar"),
        ({"where": Path("/data")}, r"checkpoint\['where'\] is a PosixPath, which .* gives back as a str"),
    ],
)
def test_a_value_json_would_change_is_refused_at_the_first_save(tmp_path, extra, refusal):
    with pytest.raises(TypeError, match=refusal):
        fit(tmp_path, Hooked(extra))
    assert not (tmp_path / "checkpoints" / "last").exists()


def test_changing_the_runs_epoch_in_the_save_hook_is_refused(tmp_path):
    with pytest.raises(
        ValueError, match=r"checkpoint\['epoch'\] is the Trainer's and read-only \(0\).*\(7\)"
    ):
        fit(tmp_path, Hooked({"epoch": 7}))


class Vocabulary(DataModule):
    """A DataModule with state of its own (a vocabulary grown in `setup`)."""

    def __init__(self, state=None):
        self.vocab, self.state, self.loaded = 0, state, []
        self.vocab_of_loaders = []  # the vocabulary each `*_dataloader` call was made with
        self.torn_down = []

    def setup(self, stage):
        self.vocab += 1

    def teardown(self, stage):
        self.torn_down.append(stage)

    def _batches(self, n, seed=0):
        self.vocab_of_loaders.append(self.vocab)
        return make_batches(n, seed=seed)

    def train_dataloader(self):
        return self._batches(32)

    def val_dataloader(self):
        return self._batches(16, seed=1)

    test_dataloader = predict_dataloader = val_dataloader

    def state_dict(self):
        return self.state if self.state is not None else {"vocab": self.vocab}

    def load_state_dict(self, state):
        self.loaded.append(state)
        self.vocab = state["vocab"]


def test_a_datamodules_state_is_saved_and_given_back_on_resume(tmp_path):
    kw = {"default_root_dir": tmp_path, "enable_progress_bar": False, "num_sanity_val_steps": 0}
    first = Vocabulary()
    first.vocab = 41  # (setup makes it 42)
    Trainer(max_epochs=1, **kw).fit(TinyClassifier(), datamodule=first)
    saved = json.loads((tmp_path / "checkpoints" / "last" / "trainer_state.json").read_text())
    assert saved["datamodule"] == {"vocab": 42}
    resumed = Vocabulary()
    Trainer(max_epochs=2, **kw).fit(TinyClassifier(), datamodule=resumed, ckpt_path="last")
    assert resumed.loaded == [{"vocab": 42}] and resumed.vocab == 42
    # As in Lightning, given back before the loaders are asked for: they are built with the resumed state.
    assert resumed.vocab_of_loaders == [42, 42]


def test_a_callbacks_on_save_checkpoint_sees_the_datamodules_state_as_in_lightning(tmp_path):
    """Lightning 2.6.6's `dump_checkpoint` puts the datamodule's `state_dict()` under its class's qualified
    name before the callbacks' `on_save_checkpoint` (measured: a callback saw checkpoint["DM"] == {"fold": 3}
    and its edit was saved); here the callbacks saw no datamodule state (it was added after them)."""

    class SeesData(Callback):
        def __init__(self):
            self.seen = []

        def on_save_checkpoint(self, trainer, module, checkpoint):
            self.seen.append(dict(checkpoint["Vocabulary"]))
            checkpoint["Vocabulary"]["vocab"] += 100  # (an edit, saved as Lightning saves it)

    kw = {"default_root_dir": tmp_path, "enable_progress_bar": False, "num_sanity_val_steps": 0}
    sees = SeesData()
    Trainer(max_epochs=1, callbacks=[sees], **kw).fit(TinyClassifier(), datamodule=Vocabulary())
    assert sees.seen and sees.seen[0] == {"vocab": 1}
    saved = json.loads((tmp_path / "checkpoints" / "last" / "trainer_state.json").read_text())
    assert saved["datamodule"] == {"vocab": 101} and "Vocabulary" not in saved


def test_a_callbacks_on_load_checkpoint_sees_the_datamodules_state_as_in_lightning(tmp_path):
    """Lightning 2.6.6 (measured: fit(ckpt_path=...) and validate(ckpt_path=...)): a callback's
    `on_load_checkpoint` finds the datamodule's state under its class's qualified name (checkpoint["DM"]),
    after the datamodule got it back (an edit there reaches nothing); here it found none."""

    class SeesData(Callback):
        def __init__(self):
            self.seen = []

        def on_load_checkpoint(self, trainer, module, checkpoint):
            self.seen.append(dict(checkpoint.get("Vocabulary", {"missing": True})))
            if "Vocabulary" in checkpoint:
                checkpoint["Vocabulary"]["vocab"] = 0

    kw = {"default_root_dir": tmp_path, "enable_progress_bar": False, "num_sanity_val_steps": 0}
    first = Vocabulary()
    first.vocab = 41  # (setup makes it 42)
    Trainer(max_epochs=1, **kw).fit(TinyClassifier(), datamodule=first)
    sees, resumed = SeesData(), Vocabulary()
    Trainer(max_epochs=2, callbacks=[sees], **kw).fit(TinyClassifier(), datamodule=resumed, ckpt_path="last")
    assert sees.seen == [{"vocab": 42}]
    assert resumed.loaded == [{"vocab": 42}] and resumed.vocab_of_loaders[0] == 42
    last = tmp_path / "checkpoints" / "last"
    assert json.loads((last / "trainer_state.json").read_text())["datamodule"] == {"vocab": 42}
    sees = SeesData()
    Trainer(callbacks=[sees], **kw).validate(TinyClassifier(), datamodule=Vocabulary(), ckpt_path=last)
    assert sees.seen == [{"vocab": 42}]


def test_a_resumed_fit_asks_for_its_loaders_at_the_checkpoints_epoch_as_lightning(tmp_path):
    """A curriculum reading `self.trainer.current_epoch` in `train_dataloader()` (2 s clips, then 4 s): the
    fit resumed from the end of epoch 1 built epoch 0's loader (current_epoch 0 there), where Lightning's,
    whose loops are restored before it asks for the loaders, builds epoch 2's."""

    class Curriculum(DataModule):
        def __init__(self):
            self.asked_at = []

        def train_dataloader(self):
            self.asked_at.append(("train", self.trainer.current_epoch, self.trainer.global_step))
            return make_batches(32)

        def val_dataloader(self):
            self.asked_at.append(("val", self.trainer.current_epoch, self.trainer.global_step))
            return make_batches(16, seed=1)

    kw = {"default_root_dir": tmp_path, "enable_progress_bar": False, "num_sanity_val_steps": 0}
    first = Curriculum()
    Trainer(max_epochs=2, **kw).fit(TinyClassifier(), datamodule=first)
    assert first.asked_at == [("train", 0, 0), ("val", 0, 0)]
    resumed = Curriculum()
    trainer = Trainer(max_epochs=3, **kw)
    trainer.fit(TinyClassifier(), datamodule=resumed, ckpt_path="last")
    saved_step = trainer.global_step - trainer.num_training_batches
    assert resumed.asked_at == [("train", 2, saved_step), ("val", 2, saved_step)]
    assert trainer.current_epoch == 3


def test_the_state_of_another_datamodule_class_is_not_given_to_this_one_as_in_lightning(tmp_path):
    """Lightning keys a datamodule's state by its class (`restore_datamodule`); here a checkpoint's state
    went to any datamodule's load_state_dict, whose own keys then failed (a bare KeyError: 'fold')."""
    kw = {"default_root_dir": tmp_path, "enable_progress_bar": False, "num_sanity_val_steps": 0}
    Trainer(max_epochs=1, **kw).fit(TinyClassifier(), datamodule=Vocabulary())
    resumed = Vocabulary()  # (its own class's state comes back)
    Trainer(max_epochs=2, **kw).fit(TinyClassifier(), datamodule=resumed, ckpt_path="last")
    assert resumed.loaded == [{"vocab": 1}]

    class Folds(DataModule):
        def train_dataloader(self):
            return make_batches(32)

        def load_state_dict(self, state_dict):
            self.fold = state_dict["fold"]

    folds = Folds()
    with pytest.warns(UserWarning, match="holds the state of the DataModule Vocabulary, not of Folds"):
        Trainer(max_epochs=3, **kw).fit(TinyClassifier(), datamodule=folds, ckpt_path="last")
    assert not hasattr(folds, "fold")


@pytest.mark.parametrize("stage", ["validate", "test", "predict"])
def test_a_stage_from_ckpt_path_gives_the_datamodule_its_state_before_its_loaders(tmp_path, stage):
    # Lightning's restore_datamodule runs in every stage given a ckpt_path, after setup and before the
    # *_dataloader call: a loader built from the state (a fold, a vocabulary) is the checkpoint's.
    first = Vocabulary()
    first.vocab = 41  # (setup makes it 42)
    kw = {"enable_progress_bar": False, "num_sanity_val_steps": 0}
    Trainer(max_epochs=1, default_root_dir=tmp_path, **kw).fit(TinyClassifier(), datamodule=first)
    fresh = Vocabulary()
    evaluator = Trainer(default_root_dir=tmp_path / "eval", logger=False, **kw)
    path = tmp_path / "checkpoints" / "last"
    getattr(evaluator, stage)(TinyClassifier(), datamodule=fresh, ckpt_path=path)
    assert fresh.loaded == [{"vocab": 42}] and fresh.vocab_of_loaders == [42]


def test_a_datamodule_without_state_of_its_own_stores_none(tmp_path):
    class Plain(DataModule):  # DataModule's default state_dict(): empty, so nothing in the checkpoint
        def train_dataloader(self):
            return make_batches(32)

    kw = {"default_root_dir": tmp_path, "enable_progress_bar": False, "num_sanity_val_steps": 0}
    Trainer(max_epochs=1, **kw).fit(TinyClassifier(), datamodule=Plain())
    saved = json.loads((tmp_path / "checkpoints" / "last" / "trainer_state.json").read_text())
    assert "datamodule" not in saved


def test_a_datamodule_state_json_would_change_is_refused_by_name(tmp_path):
    with pytest.raises(TypeError, match=r"Vocabulary.state_dict\(\)\['shape'\] is a tuple"):
        Trainer(max_epochs=1, default_root_dir=tmp_path, enable_progress_bar=False).fit(
            TinyClassifier(), datamodule=Vocabulary({"shape": (1, 2)})
        )


@pytest.mark.parametrize("stage", ["fit", "validate"])
def test_a_ckpt_path_that_cannot_be_read_still_tears_the_datamodule_down(tmp_path, stage):
    # The datamodule's state is read right after its setup: a refused checkpoint there gets on_exception and
    # the teardown hooks, as one refused later in the stage does.
    class Failures(Callback):
        def __init__(self):
            self.seen = []

        def on_exception(self, trainer, module, err):
            self.seen.append(type(err).__name__)

    failures, datamodule = Failures(), Vocabulary()
    t = Trainer(max_epochs=1, default_root_dir=tmp_path, enable_progress_bar=False, callbacks=[failures])
    with pytest.raises(CheckpointError, match="does not exist"):
        getattr(t, stage)(TinyClassifier(), datamodule=datamodule, ckpt_path=tmp_path / "missing")
    assert failures.seen == ["CheckpointNotFoundError"] and datamodule.torn_down == [stage]


def test_arrays_the_module_hook_and_the_datamodule_store_come_back_as_arrays(tmp_path):
    """Lightning's `checkpoint["ema"] = weights` (and a DataModule's array state) came back as nested lists,
    where Lightning gives tensors back."""
    import mlx.core as mx
    import numpy as np

    ema, order = mx.arange(8, dtype=mx.float16).reshape(4, 2), np.array([3, 1, 2], dtype=np.int32)

    class Averaged(Hooked):  # (an array kept on the module would be one of its weights)
        def on_save_checkpoint(self, checkpoint):
            checkpoint["ema"] = {"w": ema}

    kw = {"default_root_dir": tmp_path, "enable_progress_bar": False, "num_sanity_val_steps": 0}
    Trainer(max_epochs=1, **kw).fit(Averaged(), datamodule=Vocabulary({"vocab": 1, "o": order}))
    restored = Averaged.load_from_checkpoint(tmp_path / "checkpoints" / "last")  # (the hook, without a fit)
    [back] = restored.loaded
    assert back["ema"]["w"].dtype == mx.float16 and np.array_equal(back["ema"]["w"], ema)
    resumed = Vocabulary()
    Trainer(max_epochs=2, **kw).fit(Hooked(), datamodule=resumed, ckpt_path="last")
    [state] = resumed.loaded
    assert state["o"].dtype == np.int32 and state["o"].tolist() == [3, 1, 2]


class Widened(TinyClassifier):
    """Its hidden width is decided after it is built (from the data, say), recorded by its save hook and
    rebuilt by its load hook: Lightning calls `on_load_checkpoint` before the weights load."""

    def widen(self, hidden):
        import mlx.nn as nn

        self.hidden, self.fc1, self.fc2 = hidden, nn.Linear(8, hidden), nn.Linear(hidden, 3)

    def on_save_checkpoint(self, checkpoint):
        checkpoint["hidden"] = self.hidden

    def on_load_checkpoint(self, checkpoint):
        self.widen(checkpoint["hidden"])


def test_the_module_load_hook_runs_before_the_weights_load_as_in_lightning(tmp_path):
    # The hook ran after the weights were checked against the module as __init__ built it, so all three
    # refused the checkpoint as of another model (fc1.weight: checkpoint (32, 8) vs model (16, 8)).
    model = Widened()
    model.widen(32)
    t = fit(tmp_path, model)
    last = t.checkpoint_callback.last_model_path
    restored = Widened.load_from_checkpoint(last)
    assert restored.fc1.weight.shape == (32, 8) and np.array_equal(restored.fc1.weight, model.fc1.weight)
    evaluator = Trainer(default_root_dir=tmp_path / "eval", enable_progress_bar=False, logger=False)
    [metrics] = evaluator.validate(Widened(), make_batches(16, seed=1), ckpt_path=last)
    assert np.isfinite(metrics["val_loss"])
    resumed, again = Widened(), Trainer(max_epochs=2, default_root_dir=tmp_path, enable_progress_bar=False)
    again.fit(resumed, make_batches(32), make_batches(16, seed=1), ckpt_path="last")
    assert resumed.fc1.weight.shape == (32, 8) and again.global_step == 4


class Slimming(Callback):
    """Edits the Trainer's entries in `on_save_checkpoint`: keeps the last history row (allowed), and from
    epoch `breaks_at` on replaces the history with what no resume reads."""

    def __init__(self, breaks_at):
        self.breaks_at = breaks_at

    def on_save_checkpoint(self, trainer, module, checkpoint):
        checkpoint["history"]["rows"] = checkpoint["history"]["rows"][-1:]
        if trainer.current_epoch >= self.breaks_at:
            checkpoint["history"] = {"rows": None}


def test_a_callback_that_breaks_the_trainers_entries_is_refused_before_the_save(tmp_path):
    # The broken checkpoint was written over the good `last`, and only its resume failed ('history.rows'
    # must be a list of objects): the run could not be continued from anything.
    with pytest.raises(
        ValueError, match=r"Slimming.on_save_checkpoint left in the checkpoint: 'history.rows'"
    ):
        fit(tmp_path, TinyClassifier(), epochs=2, callbacks=[Slimming(breaks_at=1)])
    resumed = Trainer(max_epochs=2, default_root_dir=tmp_path, enable_progress_bar=False)
    resumed.fit(TinyClassifier(), make_batches(32), make_batches(16, seed=1), ckpt_path="last")
    assert resumed.current_epoch == 2 and resumed.global_step == 4


def test_reading_lightnings_state_dict_in_the_module_hook_says_where_the_weights_are(tmp_path):
    # Lightning code that drops a frozen backbone's weights from the checkpoint got a bare
    # KeyError: 'state_dict'.
    class DropsBackbone(TinyClassifier):
        def on_save_checkpoint(self, checkpoint):
            for name in list(checkpoint["state_dict"]):
                del checkpoint["state_dict"][name]

    with pytest.raises(
        KeyError,
        match=r"checkpoint\['state_dict'\] in DropsBackbone.on_save_checkpoint: .*"
        r"not Lightning's whole checkpoint; the weights are in model.safetensors",
    ):
        fit(tmp_path, DropsBackbone())


class StatOnABlock(TinyClassifier):
    """Its load hook keeps a statistic on a layer of a list of layers (`self.blocks[0].stat`)."""

    def __init__(self):
        import mlx.nn as nn

        super().__init__()
        self.blocks = [nn.Linear(3, 3), nn.Linear(3, 3)]

    def __call__(self, x):
        y = super().__call__(x)
        for block in self.blocks:
            y = block(y)
        return y

    def on_save_checkpoint(self, checkpoint):
        checkpoint["stat"] = [1.0, 2.0]

    def on_load_checkpoint(self, checkpoint):
        import mlx.core as mx

        self.blocks[0].stat = mx.array(checkpoint["stat"])


def test_an_array_the_load_hook_adds_inside_a_list_of_layers_freezes_that_array_alone(tmp_path):
    # The whole `blocks` list was frozen with it: the resume was refused ('its trainable parameters cannot be
    # set to [... blocks.0.weight ...]') and load_from_checkpoint gave a module whose blocks never trained.
    from mlx.utils import tree_flatten

    t = fit(tmp_path, StatOnABlock())
    restored = StatOnABlock.load_from_checkpoint(t.checkpoint_callback.last_model_path)
    trainable = {name for name, _ in tree_flatten(restored.trainable_parameters())}
    assert "blocks.0.weight" in trainable and "blocks.0.stat" not in trainable
    resumed = Trainer(max_epochs=2, default_root_dir=tmp_path, enable_progress_bar=False)
    resumed.fit(StatOnABlock(), make_batches(32), make_batches(16, seed=1), ckpt_path="last")
    assert resumed.global_step == 4


class KeepsAStat(TinyClassifier):
    """Its load hook keeps an array of its own on the module, which the checkpoint's weights lack."""

    def on_save_checkpoint(self, checkpoint):
        checkpoint["stat"] = [1.0, 2.0, 3.0]

    def on_load_checkpoint(self, checkpoint):
        import mlx.core as mx

        self.stat = mx.array(checkpoint["stat"])


def test_a_stage_evaluates_the_ema_of_a_checkpoint_whose_load_hook_adds_an_array(tmp_path):
    # Since the hook ran before the weights load, validate(ckpt_path=...) checked the EMA's average against
    # the module with the hook's array and refused it ("the average of 4 update(s) does not fit KeepsAStat's
    # parameters (1 problem(s): missing 'stat')"); load_from_checkpoint loaded the same checkpoint.
    from audiotrain.train.callbacks import EMAWeightAveraging

    t = fit(tmp_path, KeepsAStat(), epochs=2, callbacks=[EMAWeightAveraging(decay=0.5)])
    last = t.checkpoint_callback.last_model_path
    evaluator = Trainer(default_root_dir=tmp_path / "eval", enable_progress_bar=False, logger=False)
    module = KeepsAStat()
    [metrics] = evaluator.validate(module, make_batches(16, seed=1), ckpt_path=last)
    loaded = KeepsAStat.load_from_checkpoint(last)
    assert module.stat.tolist() == [1.0, 2.0, 3.0] and np.array_equal(loaded.fc1.weight, module.fc1.weight)
    assert np.isfinite(metrics["val_loss"])


def test_one_module_evaluated_from_a_checkpoint_twice_gets_its_load_hooks_array_again(tmp_path):
    # The second stage took the array the first one's hook added for a weight the checkpoint must hold:
    # "model.safetensors does not match this KeepsAStat model: ... 1 missing (e.g. stat)".
    t = fit(tmp_path, KeepsAStat())
    last = t.checkpoint_callback.last_model_path
    evaluator = Trainer(default_root_dir=tmp_path / "eval", enable_progress_bar=False, logger=False)
    module = KeepsAStat()
    [validated] = evaluator.validate(module, make_batches(16, seed=1), ckpt_path=last)
    [tested] = evaluator.test(module, make_batches(16, seed=1), ckpt_path=last)
    assert tested["test_loss"] == validated["val_loss"] and module.stat.tolist() == [1.0, 2.0, 3.0]


class ReadsHparams(TinyClassifier):
    """Lightning code that reads the saved hyperparameters in its checkpoint hooks (a migration check)."""

    def __init__(self, width=3, kernel=(3, 3)):
        super().__init__()
        self.save_hyperparameters()
        self.saw_on_save, self.saw_on_load = [], []

    def on_save_checkpoint(self, checkpoint):
        self.saw_on_save.append(checkpoint["hyper_parameters"])

    def on_load_checkpoint(self, checkpoint):
        self.saw_on_load.append(checkpoint["hyper_parameters"])


def test_the_module_hooks_read_the_saved_hyperparameters_as_in_lightning(tmp_path):
    # Lightning 2.6.6 gives both hooks checkpoint["hyper_parameters"]: the module's hparams as saved (a
    # change made after save_hyperparameters included), in load_from_checkpoint and in a resumed fit alike;
    # here it was a KeyError pointing to self.hparams, which there are the new module's, not the saved ones.
    model = ReadsHparams(width=5)
    model.hparams.width = 9
    model.hparams["later"] = 1
    t = fit(tmp_path, model)
    assert model.saw_on_save == [{"width": 9, "kernel": (3, 3), "later": 1}]
    last = t.checkpoint_callback.last_model_path
    restored = ReadsHparams.load_from_checkpoint(last, width=2)
    assert restored.saw_on_load == [{"width": 9, "kernel": (3, 3), "later": 1}]
    assert restored.hparams == {"width": 2, "kernel": (3, 3)}
    resumed = ReadsHparams()
    again = Trainer(max_epochs=2, default_root_dir=tmp_path, enable_progress_bar=False)
    again.fit(resumed, make_batches(32), ckpt_path=last)
    assert resumed.saw_on_load == [{"width": 9, "kernel": (3, 3), "later": 1}]


def test_changing_the_saved_hyperparameters_in_the_save_hook_is_refused(tmp_path):
    # They are what load_from_checkpoint rebuilds the module with: a change there would not be saved.
    class EditsHparams(ReadsHparams):
        def on_save_checkpoint(self, checkpoint):
            checkpoint["hyper_parameters"]["width"] = 1

    with pytest.raises(ValueError, match=r"checkpoint\['hyper_parameters'\] .*self\.hparams"):
        fit(tmp_path, EditsHparams())
