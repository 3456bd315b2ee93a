"""Plain Python values a compiled step read while traced, changed by a hook afterwards: the graph keeps the
traced value as a constant. The user's side: a curriculum or an annealed loss weight, read wherever the step
reads it (a helper method, a submodule, a dict attribute, `self.hparams`), and a temperature read in
`validation_step`."""

import dataclasses
import warnings
from functools import partial
from types import SimpleNamespace

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten
from tasks import TinyClassifier, make_batches, quiet_trainer, weights

STALE = "since the compiled training step was traced"


class HelperWeight(TinyClassifier):
    """The annealed weight is read in a helper method the step calls, not in compute_loss itself."""

    def __init__(self):
        super().__init__()
        self.aux_weight = 0.0

    def on_train_epoch_start(self, epoch):
        self.aux_weight = float(epoch)

    def aux_loss(self, logits):
        return self.aux_weight * mx.mean(logits**2)

    def compute_loss(self, batch):
        loss, metrics = super().compute_loss(batch)
        return loss + self.aux_loss(self(batch[0])), metrics


class Noise(nn.Module):
    def __init__(self):
        super().__init__()
        self.level = 0.0

    def __call__(self, x):
        return x + self.level


class SubmoduleNoise(TinyClassifier):
    """A curriculum on a submodule's plain attribute, read in that submodule's __call__."""

    def __init__(self):
        super().__init__()
        self.noise = Noise()

    def on_train_epoch_start(self, epoch):
        self.noise.level = 0.5 * epoch

    def __call__(self, x):
        return super().__call__(self.noise(x))


class DictWeight(TinyClassifier):
    """Loss weights kept in a dict attribute, one of them annealed by the hook."""

    def __init__(self):
        super().__init__()
        self.loss_weights = {"aux": 0.0}

    def on_train_epoch_start(self, epoch):
        self.loss_weights["aux"] = float(epoch)

    def compute_loss(self, batch):
        loss, metrics = super().compute_loss(batch)
        return loss + self.loss_weights["aux"] * mx.mean(self(batch[0]) ** 2), metrics


class HparamWeight(TinyClassifier):
    """Lightning's habit: the weight is a hyperparameter, changed through self.hparams."""

    def __init__(self, aux_weight: float = 0.0):
        super().__init__()
        self.save_hyperparameters()

    def on_train_epoch_start(self, epoch):
        self.hparams.aux_weight = float(epoch)

    def compute_loss(self, batch):
        loss, metrics = super().compute_loss(batch)
        return loss + self.hparams.aux_weight * mx.mean(self(batch[0]) ** 2), metrics


@dataclasses.dataclass
class _LossConfig:
    aux: float = 0.0


class ConfigWeight(TinyClassifier):
    """Loss weights in a config object attribute (a dataclass, or a SimpleNamespace), one annealed."""

    def __init__(self, config=_LossConfig):
        super().__init__()
        self.cfg = config()

    def on_train_epoch_start(self, epoch):
        self.cfg.aux = float(epoch)

    def compute_loss(self, batch):
        loss, metrics = super().compute_loss(batch)
        return loss + self.cfg.aux * mx.mean(self(batch[0]) ** 2), metrics


class _MemoryBank:
    """MoCo's queue in a plain object the module points to (no module: not the step's state)."""

    def __init__(self):
        self.queue = mx.zeros((1,))


class BankWeight(TinyClassifier):
    """The loss reads `self.bank.queue`, an array a hook reassigns."""

    def __init__(self):
        super().__init__()
        self.bank = _MemoryBank()

    def on_train_epoch_start(self, epoch):
        self.bank.queue = mx.full((1,), float(epoch))

    def compute_loss(self, batch):
        loss, metrics = super().compute_loss(batch)
        return loss + mx.sum(self.bank.queue) * mx.mean(self(batch[0]) ** 2), metrics


@pytest.mark.parametrize(
    "model, named",
    [
        (HelperWeight, "HelperWeight.aux_weight changed from 0.0 to 1.0"),
        (SubmoduleNoise, "SubmoduleNoise.noise.level changed from 0.0 to 0.5"),
        (DictWeight, "DictWeight.loss_weights['aux'] changed from 0.0 to 1.0"),
        (HparamWeight, "HparamWeight.hparams['aux_weight'] changed from 0.0 to 1.0"),
        (ConfigWeight, "ConfigWeight.cfg.aux changed from 0.0 to 1.0"),
        (partial(ConfigWeight, lambda: SimpleNamespace(aux=0.0)), "ConfigWeight.cfg.aux changed from 0.0"),
        (BankWeight, "BankWeight.bank.queue, an array held by an object that is no module (_MemoryBank)"),
    ],
    ids=["helper_method", "submodule", "dict_attribute", "hparams", "dataclass", "namespace", "array_object"],
)
def test_a_value_the_compiled_step_reads_outside_its_own_source_is_warned_of_when_a_hook_changes_it(
    tmp_path, model, named
):
    """Compiled, each of these trained every epoch with the first epoch's value (the eager fit's loss grew
    with it) and nothing said so: only `self.<name>` written in compute_loss, training_step or __call__
    themselves was watched. Now the value read while the step is traced is named, wherever it was read.
    An array in a plain object (`self.bank.queue`, MoCo's queue) was a constant of the graph too, unsaid:
    now its reassignment is named with the fix (the array on the module, or given to the step)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = quiet_trainer(tmp_path, max_epochs=3, compile=True, enable_model_summary=False)
        trainer.fit(model(), make_batches(n=32))
    said = [str(w.message) for w in caught if STALE in str(w.message)]
    assert len(said) == 1, said
    assert said[0].startswith(named) and "Trainer(compile=False)" in said[0]


class ValidationTemperature(TinyClassifier):
    """A temperature a training hook sets, read by validation_step."""

    def __init__(self):
        super().__init__()
        self.temperature = 1.0

    def on_train_epoch_start(self, epoch):
        self.temperature = 1.0 + 2.0 * epoch

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", mx.mean(nn.losses.cross_entropy(self(x) / self.temperature, y)))


def test_validation_in_fit_reads_the_value_a_hook_set_since_its_last_validation(tmp_path):
    """The compiled validation step was traced at the first validation and kept that temperature for the
    whole fit, silently: val_loss differed from the eager fit's from the second epoch on. Now it is traced
    again where what it read changed, and both fits report the same val_loss."""
    val_losses = {}
    for compile in (True, False):
        mx.random.seed(0)
        model = ValidationTemperature()
        trainer = quiet_trainer(
            tmp_path / str(compile), max_epochs=3, compile=compile, enable_model_summary=False
        )
        trainer.fit(model, make_batches(n=32), make_batches(n=32, seed=1))
        val_losses[compile] = trainer.history["val_loss"]
    np.testing.assert_allclose(val_losses[True], val_losses[False], rtol=1e-5)


class LazyHead(TinyClassifier):
    """Keras' habit (torch's LazyLinear): the head is built on the first call, once the input size is known"""

    def __init__(self):
        super().__init__()
        self.head = None

    def __call__(self, x):
        if self.head is None:
            self.head = nn.Linear(x.shape[-1], 3)
        return self.head(x)


class HeadInConfigureModel(LazyHead):
    def configure_model(self):
        if self.head is None:
            self.head = nn.Linear(8, 3)


@pytest.mark.parametrize("compile", [True, False])
def test_a_layer_built_on_the_first_call_is_refused_saying_where_to_build_it(tmp_path, compile):
    """Compiled, the message said `LazyHead.compute_loss added to self. while the compiled step was traced
    (Lightning's self.training_step_outputs.append(loss))`, an empty name and a list's advice; eager, that
    `LazyHead.head grew or shrank` and to rename it `self._head = []`, which would hide the layer from the
    optimizer for good. Now both name the layer and say to build it in __init__ or configure_model, which
    then trains."""
    trainer = quiet_trainer(tmp_path, max_epochs=1, compile=compile, enable_model_summary=False)
    with pytest.raises(RuntimeError) as raised:
        trainer.fit(LazyHead(), make_batches(n=32))
    said = str(raised.value)
    assert "LazyHead.head (Linear)" in said and "configure_model()" in said and "__init__" in said
    assert "self._head" not in said and "append" not in said
    model = HeadInConfigureModel()
    quiet_trainer(tmp_path / "built", max_epochs=1, compile=compile).fit(model, make_batches(n=32))
    assert model.head is not None and "head.weight" in dict(tree_flatten(model.trainable_parameters()))


class BranchOnBatchIndex(TinyClassifier):
    def training_step(self, batch, batch_idx):
        loss, _ = self.compute_loss(batch)
        if batch_idx == 0:  # (a Python if on an array: fine eagerly, not while traced)
            loss = loss * 0
        return loss


def test_a_python_branch_on_an_array_in_the_compiled_step_names_compile_false_as_a_way_out(tmp_path):
    """The error said the step "must stay pure MLX", though the same step trains with compile=False: the
    user learnt that only by trying. Now the message names it beside mx.where."""
    trainer = quiet_trainer(tmp_path, max_epochs=1, compile=True, enable_model_summary=False)
    with pytest.raises(RuntimeError, match=r"if batch_idx == 0:.*mx\.where.*Trainer\(compile=False\)"):
        trainer.fit(BranchOnBatchIndex(), make_batches(n=32))
    quiet_trainer(tmp_path / "eager", max_epochs=1, compile=False).fit(
        BranchOnBatchIndex(), make_batches(n=32)
    )


class ForwardCompiledInside(TinyClassifier):
    """MLX's inference habit inside a TrainModule: the forward wrapped in mx.compile, without its state."""

    def __init__(self):
        super().__init__()
        self._forward = mx.compile(super().__call__)

    def __call__(self, x):
        return self._forward(x)


def test_an_eager_fit_whose_loss_reaches_no_weight_is_warned_of_naming_the_compiled_forward(tmp_path):
    """With Trainer(compile=False) (the way out of other pitfalls), a forward compiled inside the module kept
    its traced weights as constants: no gradient reached them, the loss stayed flat, nothing said why. Now
    its first steps warn, naming the compiled function and the fix (inputs=self.state), which trains."""
    model = ForwardCompiledInside()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_trainer(tmp_path, max_epochs=1, compile=False, enable_model_summary=False).fit(
            model, make_batches()
        )
    said = [str(w.message) for w in caught if "no trainable weight got a gradient" in str(w.message)]
    assert len(said) == 1 and "ForwardCompiledInside._forward" in said[0] and "inputs=self.state" in said[0]
    model = ForwardCompiledInside()
    model._forward = partial(mx.compile, inputs=model.state)(TinyClassifier.__call__.__get__(model))
    before = weights(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_trainer(tmp_path / "state", max_epochs=1, compile=False).fit(model, make_batches())
    assert not [w for w in caught if "no trainable weight got a gradient" in str(w.message)]
    assert not np.array_equal(before["fc1.weight"], weights(model)["fc1.weight"])


class Registered(TinyClassifier):
    """A user's registry of model classes by name, filled by __init_subclass__ (a common plugin pattern)."""

    registry: dict = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        Registered.registry[cls.__name__] = cls


class RegisteredModel(Registered):
    pass


def test_watching_the_traced_reads_leaves_a_users_registry_of_subclasses_alone(tmp_path):
    # Watching reads makes, for a trace, a subclass of each module's class: making one of a class with an
    # __init_subclass__ ran it, and the registry then held the watching subclass in the user's class's place.
    quiet_trainer(tmp_path, max_epochs=1).fit(RegisteredModel(), make_batches(32, 16))
    assert Registered.registry == {"RegisteredModel": RegisteredModel}


class L2OnLinearLayers(TinyClassifier):
    """A penalty on the weights of the model's nn.Linear layers, found by `type(m) is nn.Linear`."""

    def compute_loss(self, batch):
        loss, metrics = super().compute_loss(batch)
        penalty = sum(mx.sum(m.weight**2) for m in self.modules() if type(m) is nn.Linear)
        return loss + 0.1 * penalty, metrics


def test_a_step_that_picks_layers_by_their_exact_class_trains_as_the_eager_one(tmp_path):
    # Watching the traced reads swapped each module's class for a subclass during the trace: `type(m) is
    # nn.Linear` was False there, so the compiled fit trained without the penalty (1.19 against 1.81).
    losses = {}
    for compile in (True, False):
        mx.random.seed(0)
        trainer = quiet_trainer(tmp_path / str(compile), max_epochs=2, compile=compile)
        trainer.fit(L2OnLinearLayers(), make_batches(n=32))
        losses[compile] = trainer.history["train_loss"]
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-5)


class ByMetaclass(type(nn.Module)):
    """A registry of model classes filled by a metaclass (another plugin pattern)."""

    registry: dict = {}

    def __init__(cls, name, bases, namespace):
        super().__init__(name, bases, namespace)
        ByMetaclass.registry[name] = cls


class MetaclassRegistered(TinyClassifier, metaclass=ByMetaclass):
    pass


def test_watching_the_traced_reads_leaves_a_metaclass_registry_and_the_subclasses_alone(tmp_path):
    # The watching subclass made for the trace went through the user's metaclass, replacing the class in its
    # registry, and stayed among the class's __subclasses__() for good.
    quiet_trainer(tmp_path, max_epochs=1).fit(MetaclassRegistered(), make_batches(32, 16))
    assert ByMetaclass.registry == {"MetaclassRegistered": MetaclassRegistered}
    assert MetaclassRegistered.__subclasses__() == []
    assert [c for c in nn.Linear.__subclasses__() if c.__name__ == "Linear"] == []


class NaNUnset(TinyClassifier):
    """A setting left unset as float('nan') (a clip the step applies only when set), never changed."""

    def __init__(self):
        super().__init__()
        self.loss_clip = float("nan")

    def compute_loss(self, batch):
        loss, metrics = super().compute_loss(batch)
        if self.loss_clip == self.loss_clip:  # (set: not NaN)
            loss = mx.minimum(loss, self.loss_clip)
        return loss, metrics


def test_a_nan_the_step_read_and_nothing_changed_is_not_warned_of(tmp_path):
    # NaN != NaN: the warning said 'NaNUnset.loss_clip changed from nan to nan' though no hook touched it.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_trainer(tmp_path, max_epochs=2, compile=True).fit(NaNUnset(), make_batches(n=32))
    assert not [w for w in caught if STALE in str(w.message)]


def test_a_trace_that_fails_leaves_the_model_s_classes_as_they_were(tmp_path):
    # The reads are noted through a __getattribute__ set on each class of the model's modules for the trace:
    # a trace that raises (here a layer built on the first call) must take it off again.
    model = LazyHead()
    with pytest.raises(RuntimeError):
        quiet_trainer(tmp_path, max_epochs=1, compile=True).fit(model, make_batches(n=32))
    assert [type(m).__name__ for m in model.modules() if "__getattribute__" in vars(type(m))] == []
    assert type(model) is LazyHead and type(model.fc1) is nn.Linear


class EpochInValidation(TinyClassifier):
    """Lightning's habit: validation_step reads the Trainer's counts (`if self.current_epoch % 5 == 0`)."""

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", mx.mean(nn.losses.cross_entropy(self(x), y)))
        self.log("val_epoch", float(self.current_epoch))
        self.log("val_global_step", float(self.global_step))


def test_validation_in_fit_reads_the_epoch_and_step_of_that_validation(tmp_path):
    """The compiled validation step was traced at the first validation and logged epoch 0, step 4 at every
    later one (under data parallel too: EarlyStopping and ModelCheckpoint then decided on a frozen number),
    with a warning that pointed at audiotrain's own traced_reads.py. Lightning 2.6.6 logs each validation's
    own: val_epoch 0, 1, 2 and val_global_step 4, 8, 12 (32 samples, batch 8). Now the step is traced again
    where a count it read has changed, and nothing warns."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = quiet_trainer(tmp_path, max_epochs=3, compile=True, enable_model_summary=False)
        trainer.fit(EpochInValidation(), make_batches(n=32, batch_size=8), make_batches(n=16, seed=1))
    assert trainer.history["val_epoch"] == [0.0, 1.0, 2.0]
    assert trainer.history["val_global_step"] == [4.0, 8.0, 12.0]
    assert not [w for w in caught if "inside its compiled step" in str(w.message)]


class TrainerCountsInSteps(TinyClassifier):
    """The same counts read through the Trainer, as Lightning code often does (self.trainer.current_epoch)."""

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", mx.mean(nn.losses.cross_entropy(self(x), y)))
        self.log("val_epoch", float(self.trainer.current_epoch))
        self.log("val_global_step", float(self.trainer.global_step))

    def training_step(self, batch, batch_idx):
        self.log("train_epoch", float(self.trainer.current_epoch), on_step=False, on_epoch=True)
        return super().training_step(batch, batch_idx)


def test_the_trainers_counts_read_in_compiled_steps_are_each_validations_and_warned_of_in_training(tmp_path):
    """self.trainer.current_epoch in validation_step logged 0.0 at every validation and, in training_step,
    0.0 every epoch, without a word. Lightning 2.6.6 logs val_epoch 0, 1, 2, val_global_step 4, 8, 12 and
    train_epoch 0, 1, 2. Now the validation step is traced again where they changed, and the training
    step, which keeps the trace's value, warns naming self.trainer.current_epoch at the user's line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = quiet_trainer(tmp_path, max_epochs=3, compile=True, enable_model_summary=False)
        trainer.fit(TrainerCountsInSteps(), make_batches(n=32, batch_size=8), make_batches(n=16, seed=1))
    assert trainer.history["val_epoch"] == [0.0, 1.0, 2.0]
    assert trainer.history["val_global_step"] == [4.0, 8.0, 12.0]
    said = [w for w in caught if "inside its compiled step" in str(w.message)]
    assert len(said) == 1 and "reads self.trainer.current_epoch" in str(said[0].message)
    assert said[0].filename == __file__


class LogsOutsideTheSanityCheck(TinyClassifier):
    """Lightning's idiom: a validation_step that tells its sanity check from a real validation."""

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", mx.mean(nn.losses.cross_entropy(self(x), y)))
        self.log("in_sanity_check", 1.0 if self.trainer.sanity_checking else 0.0)


def test_a_validation_step_that_reads_sanity_checking_is_traced_again_for_the_real_validations(tmp_path):
    """The compiled validation_step was traced in the sanity check, so `self.trainer.sanity_checking` was True
    at every later validation (in_sanity_check logged 1.0, 1.0). Lightning 2.6.6 logs 0.0 at each real
    validation; now the step is traced again once, when the flag changed."""
    trainer = quiet_trainer(
        tmp_path, max_epochs=2, compile=True, enable_model_summary=False, num_sanity_val_steps=2
    )
    trainer.fit(LogsOutsideTheSanityCheck(), make_batches(n=32, batch_size=8), make_batches(n=16, seed=1))
    assert trainer.history["in_sanity_check"] == [0.0, 0.0]


class LastBatchInTheStep(TinyClassifier):
    """A step that does something on its epoch's last batch, as Lightning code may."""

    def compute_loss(self, batch):
        loss, metrics = super().compute_loss(batch)
        return loss * (2.0 if self.trainer.is_last_batch else 1.0), metrics


def test_a_compiled_training_step_that_reads_is_last_batch_is_warned_of(tmp_path):
    """self.trainer.is_last_batch in a compiled training step was the trace's False at every batch, silently
    (Lightning 2.6.6's is True at each epoch's last batch). Now it is warned of, as self.current_epoch is."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = quiet_trainer(tmp_path, max_epochs=1, compile=True, enable_model_summary=False)
        trainer.fit(LastBatchInTheStep(), make_batches(n=32, batch_size=8))
    said = [str(w.message) for w in caught if "inside its compiled step" in str(w.message)]
    assert len(said) == 1 and "reads self.trainer.is_last_batch" in said[0] and "(False)" in said[0]
    # (a flag that changes at each batch: set in on_train_batch_start, which sees it; not once an epoch)
    assert "in on_train_batch_start, frozen" in said[0]
