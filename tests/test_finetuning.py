"""`BaseFinetuning` and `BackboneFinetuning`: Lightning's fine-tuning callbacks, the unfrozen backbone trained
as a parameter group with its own rate (a MultiOptimizer group), exact across a resume."""

import warnings

import audiotrain  # noqa: F401  (before mlx)
from audiotrain import TrainModule
from audiotrain.train import BackboneFinetuning, BaseFinetuning
from audiotrain.train.callback import Callback

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from exactness import assert_same_numbers
from tasks import TinyClassifier, make_batches, quiet_trainer, weights


class Line(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = mx.array([0.0])


class Descends(TrainModule):
    """loss = backbone.w + head.v: every SGD update lowers each by exactly its group's rate."""

    def __init__(self, lr=0.1):
        super().__init__()
        self.backbone, self.head = Line(), Line()
        self.lr = lr

    def compute_loss(self, batch):
        return mx.sum(self.backbone.w) + mx.sum(self.head.w) + 0.0 * mx.mean(batch), {}

    def configure_optimizers(self):
        return optim.SGD(learning_rate=self.lr)


class Record(Callback):
    """Each epoch's group rates (after the fine-tuning callback set them) and weights at its end."""

    def __init__(self):
        self.rates, self.weights = [], []

    def on_train_epoch_start(self, trainer, module):
        opt = trainer.optimizer
        groups = opt.optimizers if isinstance(opt, optim.MultiOptimizer) else [opt]
        self.rates.append([round(g.learning_rate.item(), 7) for g in groups])

    def on_train_epoch_end(self, trainer, module):
        self.weights.append(weights(module))


def test_the_backbone_trains_from_its_epoch_at_its_own_doubling_rate_aligned_with_the_main_one(tmp_path):
    record = Record()
    finetuning = BackboneFinetuning(unfreeze_backbone_at_epoch=1)
    trainer = quiet_trainer(tmp_path, max_epochs=6, callbacks=[finetuning, record])
    module = Descends(lr=0.1)
    trainer.fit(module, [mx.zeros((2,))])  # one update an epoch
    # Lightning's schedule: lr * 0.1 at the unfreeze epoch, then x lambda_func(epoch + 1) = 2, at most lr.
    assert record.rates == [[0.1], [0.1, 0.01], [0.1, 0.02], [0.1, 0.04], [0.1, 0.08], [0.1, 0.1]]
    backbone = [r["backbone.w"][0] for r in record.weights]
    head = [r["head.w"][0] for r in record.weights]
    np.testing.assert_allclose(backbone, [0.0, -0.01, -0.03, -0.07, -0.15, -0.25], rtol=1e-5)
    np.testing.assert_allclose(head, [-0.1, -0.2, -0.3, -0.4, -0.5, -0.6], rtol=1e-5)
    assert finetuning.previous_backbone_lr == pytest.approx(0.1)


def test_backbone_initial_lr_and_no_alignment(tmp_path):
    record = Record()
    finetuning = BackboneFinetuning(
        unfreeze_backbone_at_epoch=0,
        lambda_func=lambda epoch: epoch,
        backbone_initial_lr=0.05,
        should_align=False,
    )
    trainer = quiet_trainer(tmp_path, max_epochs=3, callbacks=[finetuning, record])
    trainer.fit(Descends(lr=0.1), [mx.zeros((2,))])
    # As Lightning, epoch e's rate is epoch e - 1's times lambda_func(e + 1): x 2 in epoch 1, x 3 in epoch 2.
    assert record.rates == [[0.1, 0.05], [0.1, 0.1], [0.1, 0.3]]


class Net(TrainModule):
    """TinyClassifier's layers as a backbone (with a BatchNorm) and a head."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm(16), nn.ReLU())
        self.head = nn.Linear(16, 3)

    def compute_loss(self, batch):
        x, y = batch
        return mx.mean(nn.losses.cross_entropy(self.head(self.backbone(x)), y)), {}

    def configure_optimizers(self):
        return optim.AdamW(learning_rate=1e-2, weight_decay=0.01)


def _trainable(module):
    from mlx.utils import tree_flatten

    return sorted(name for name, _ in tree_flatten(module.trainable_parameters()))


def test_freeze_keeps_batchnorm_weights_training_where_train_bn_and_never_its_statistics():
    net = Net()
    BaseFinetuning.freeze(net.backbone)
    assert _trainable(net) == [
        "backbone.layers.1.bias",
        "backbone.layers.1.weight",
        "head.bias",
        "head.weight",
    ]
    BaseFinetuning.freeze(net.backbone, train_bn=False)
    assert _trainable(net) == ["head.bias", "head.weight"]
    BaseFinetuning.make_trainable(net.backbone)
    BaseFinetuning.freeze_module(net.backbone)  # (Lightning's: every parameter, BatchNorm's included)
    assert _trainable(net) == ["head.bias", "head.weight"]
    # (Lightning's flatten_modules: the submodules too, not only the modules given.)
    assert {nn.Linear, nn.BatchNorm, nn.ReLU} <= {
        type(m) for m in BaseFinetuning.flatten_modules([net.backbone])
    }
    BaseFinetuning.make_trainable([net.backbone])
    assert "backbone.layers.1.running_mean" not in _trainable(net)
    assert len(_trainable(net)) == 6


class Moves(Callback):
    """Which of `names` changed in each epoch."""

    def __init__(self, *names):
        self.names, self.moved = names, []

    def on_train_epoch_start(self, trainer, module):
        self._start = weights(module)

    def on_train_epoch_end(self, trainer, module):
        now = weights(module)
        self.moved.append({n: bool(np.any(now[n] != self._start[n])) for n in self.names})


_BN = ("backbone.layers.1.weight", "backbone.layers.1.bias")


def _moves_by_epoch(tmp_path, finetuning, epochs=3):
    moves = Moves("backbone.layers.0.weight", *_BN, "head.weight")
    trainer = quiet_trainer(tmp_path, max_epochs=epochs, callbacks=[finetuning, moves], seed=0)
    trainer.fit(Net(), make_batches(48, batch_size=8))
    return [[name for name, moved in epoch.items() if moved] for epoch in moves.moved]


@pytest.mark.parametrize("train_bn", [True, False])
def test_the_backbones_batchnorm_weights_train_in_the_main_group_from_the_start_whatever_train_bn(
    tmp_path, train_bn
):
    # As Lightning's BackboneFinetuning: freeze_before_training freezes the backbone with freeze()'s
    # train_bn=True whatever the callback's train_bn, so the BatchNorm weights train in group 0 from epoch 0;
    # at the unfreeze they are not in the backbone's group (train_bn=False: filter_params leaves them out;
    # True: they are in group 0 already) and go on training in group 0.
    finetuning = BackboneFinetuning(unfreeze_backbone_at_epoch=1, train_bn=train_bn)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        moved = _moves_by_epoch(tmp_path, finetuning)
    # (BatchNorm weights that trained already by design are not "parameters that trained already".)
    assert not [w for w in caught if "trained already" in str(w.message)]
    everything = ["backbone.layers.0.weight", *_BN, "head.weight"]
    assert moved == [[*_BN, "head.weight"], everything, everything]
    (added,) = finetuning.state_dict()["added_param_groups"]
    assert added["params"] == ["backbone.layers.0.bias", "backbone.layers.0.weight"]


class BatchNormFrozenToo(BaseFinetuning):
    """The backbone frozen with its BatchNorm weights, unfrozen at epoch 1 with `train_bn`."""

    def __init__(self, train_bn):
        super().__init__()
        self.train_bn = train_bn

    def freeze_before_training(self, module):
        self.freeze(module.backbone, train_bn=False)

    def finetune_function(self, module, epoch, optimizer):
        if epoch == 1:
            self.unfreeze_and_add_param_group(module.backbone, optimizer, train_bn=self.train_bn)


@pytest.mark.parametrize("train_bn", [True, False])
def test_batchnorm_weights_frozen_before_the_unfreeze_join_the_new_group_only_where_train_bn(
    tmp_path, train_bn
):
    finetuning = BatchNormFrozenToo(train_bn)
    moved = _moves_by_epoch(tmp_path, finetuning)
    unfrozen = ["backbone.layers.0.weight", *_BN] if train_bn else ["backbone.layers.0.weight"]
    assert moved == [["head.weight"], [*unfrozen, "head.weight"], [*unfrozen, "head.weight"]]
    (added,) = finetuning.state_dict()["added_param_groups"]
    names = ["backbone.layers.0.bias", "backbone.layers.0.weight"]
    assert added["params"] == sorted(names + (list(_BN) if train_bn else []))


class SaveAt(Callback):
    def __init__(self, epoch, batch_idx, path):
        self.at, self.path = (epoch, batch_idx), path

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if (trainer.current_epoch, batch_idx) == self.at:
            trainer.save_checkpoint(self.path)


def _fit(root, ckpt_path=None, save_at=None):
    callbacks = [BackboneFinetuning(unfreeze_backbone_at_epoch=1, lambda_func=lambda e: 1.5)]
    if save_at is not None:
        callbacks.append(SaveAt(*save_at, root / "saved"))
    trainer = quiet_trainer(root, max_epochs=4, callbacks=callbacks, seed=0)
    module = Net()
    trainer.fit(module, make_batches(48, batch_size=8), ckpt_path=ckpt_path)  # 6 batches an epoch
    return module, trainer


@pytest.mark.parametrize(
    "save_at",
    [(0, 5), (1, 5), (2, 2), (1, 0)],
    ids=["before-unfreeze", "unfreeze-epoch-end", "mid-epoch", "first-step"],
)
def test_a_fit_resumed_around_the_unfreeze_ends_with_the_weights_of_an_uninterrupted_one(tmp_path, save_at):
    straight, trainer = _fit(tmp_path / "a", save_at=save_at)
    assert isinstance(trainer.optimizer, optim.MultiOptimizer)
    resumed, resumed_trainer = _fit(tmp_path / "b", ckpt_path=tmp_path / "a" / "saved")
    for name, value in weights(straight).items():
        assert_same_numbers(weights(resumed)[name], value, err_msg=name)
    groups = [g.learning_rate.item() for g in resumed_trainer.optimizer.optimizers]
    assert groups == [g.learning_rate.item() for g in trainer.optimizer.optimizers]
    if save_at[0] >= 1:  # (saved with the backbone's group)
        # Loaded again into the Trainer that ran it: its groups are the checkpoint's, not added twice.
        resumed_trainer.load_checkpoint(tmp_path / "a" / "saved")
        assert len(resumed_trainer.optimizer.optimizers) == 2


class OwnSchedule(BaseFinetuning):
    """A BaseFinetuning of one's own: the head frozen first, unfrozen at epoch 1 at the default rate."""

    def freeze_before_training(self, module):
        self.freeze(module.head)

    def finetune_function(self, module, epoch, optimizer):
        if epoch == 1:
            self.unfreeze_and_add_param_group(module.head, optimizer, initial_denom_lr=4.0)


def test_a_group_without_a_rate_takes_group_zeros_over_initial_denom_lr(tmp_path):
    record = Record()
    trainer = quiet_trainer(tmp_path, max_epochs=2, callbacks=[OwnSchedule(), record])
    trainer.fit(Descends(lr=0.1), [mx.zeros((2,))])
    assert record.rates == [[0.1], [0.1, 0.025]]
    np.testing.assert_allclose(record.weights[-1]["head.w"], [-0.025], rtol=1e-5)


class HeadToo(OwnSchedule):
    def freeze_before_training(self, module):
        self.freeze(module.backbone)

    def finetune_function(self, module, epoch, optimizer):
        if epoch == 1:
            self.unfreeze_and_add_param_group([module.backbone, module.head], optimizer, lr=0.5)


def test_parameters_that_trained_already_stay_in_their_group_with_a_warning(tmp_path):
    record = Record()
    trainer = quiet_trainer(tmp_path, max_epochs=2, callbacks=[HeadToo(), record])
    with pytest.warns(UserWarning, match=r"1 parameter\(s\) of these modules trained already \(head.w\)"):
        trainer.fit(Descends(lr=0.1), [mx.zeros((2,))])
    assert record.rates == [[0.1], [0.1, 0.5]]
    np.testing.assert_allclose(record.weights[-1]["head.w"], [-0.2], rtol=1e-5)
    np.testing.assert_allclose(record.weights[-1]["backbone.w"], [-0.5], rtol=1e-5)


class Plain(TinyClassifier):
    pass


def test_a_module_without_a_backbone_is_refused_as_lightning_does(tmp_path):
    trainer = quiet_trainer(tmp_path, max_epochs=1, callbacks=[BackboneFinetuning()])
    with pytest.raises(ValueError, match=r"Plain should have an mlx.nn.Module `backbone` attribute"):
        trainer.fit(Plain(), make_batches(16))


def test_two_finetuning_callbacks_are_refused(tmp_path):
    trainer = quiet_trainer(tmp_path, max_epochs=1, callbacks=[BackboneFinetuning(), OwnSchedule()])
    with pytest.raises(ValueError, match="one fine-tuning callback per Trainer"):
        trainer.fit(Descends(), [mx.zeros((2,))])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"unfreeze_backbone_at_epoch": -1}, ValueError, "unfreeze_backbone_at_epoch must be an epoch"),
        ({"unfreeze_backbone_at_epoch": 1.5}, ValueError, "unfreeze_backbone_at_epoch must be an epoch"),
        ({"lambda_func": 2.0}, TypeError, "lambda_func must be a function"),
        ({"backbone_initial_ratio_lr": 0}, ValueError, "backbone_initial_ratio_lr must be a positive"),
        ({"backbone_initial_lr": -1e-3}, ValueError, "backbone_initial_lr must be a positive"),
        ({"initial_denom_lr": float("nan")}, ValueError, "initial_denom_lr must be a positive"),
        ({"should_align": "yes"}, TypeError, "should_align must be True or False"),
        ({"rounding": -1}, ValueError, "rounding must be an int >= 0"),
    ],
)
def test_arguments_a_user_can_get_wrong_are_refused_by_name(kwargs, error, match):
    with pytest.raises(error, match=match):
        BackboneFinetuning(**kwargs)


class WrongOptimizer(OwnSchedule):
    def finetune_function(self, module, epoch, optimizer):
        self.unfreeze_and_add_param_group(module.head, optimizer.optimizer)


class BadRate(OwnSchedule):
    def finetune_function(self, module, epoch, optimizer):
        self.unfreeze_and_add_param_group(module.head, optimizer, lr=0.0)


@pytest.mark.parametrize(
    "callback, error, match",
    [
        (WrongOptimizer(), TypeError, "optimizer must be the one finetune_function receives"),
        (BadRate(), ValueError, "unfreeze_and_add_param_group: lr must be a positive"),
    ],
)
def test_unfreeze_and_add_param_group_refuses_what_it_cannot_do(tmp_path, callback, error, match):
    trainer = quiet_trainer(tmp_path, max_epochs=1, callbacks=[callback])
    with pytest.raises(error, match=match):
        trainer.fit(Descends(), [mx.zeros((2,))])


class Scheduled(Descends):
    def configure_optimizers(self):
        return optim.SGD(learning_rate=optim.linear_schedule(0.1, 0.0, 10))


def test_the_backbone_rate_follows_the_current_rate_of_a_scheduled_main_group(tmp_path):
    record = Record()
    trainer = quiet_trainer(
        tmp_path, max_epochs=3, callbacks=[BackboneFinetuning(unfreeze_backbone_at_epoch=1), record]
    )
    trainer.fit(Scheduled(), [mx.zeros((2,))])
    # The main rate of epoch 1's first update (the schedule at step 1: 0.09) x 0.1.
    assert record.rates[1][1] == pytest.approx(0.009)
    # The rates the backbone's updates used: its group's own numbers (0.009, then x 2), not group 0's
    # schedule, which the group does not share.
    backbone = [0.0] + [r["backbone.w"][0] for r in record.weights]
    np.testing.assert_allclose(np.diff(backbone), [0.0, -0.009, -0.018], rtol=1e-5, atol=1e-9)
    head = [0.0] + [r["head.w"][0] for r in record.weights]
    np.testing.assert_allclose(np.diff(head), [-0.1, -0.09, -0.08], rtol=1e-5)


class BiasCorrected(Descends):
    def configure_optimizers(self):
        return optim.AdamW(learning_rate=0.1, weight_decay=0.0, bias_correction=True)


def test_the_backbones_group_starts_from_fresh_optimizer_state_under_bias_corrected_adam(tmp_path):
    record = Record()
    finetuning = BackboneFinetuning(unfreeze_backbone_at_epoch=2, backbone_initial_lr=0.01)
    trainer = quiet_trainer(tmp_path, max_epochs=3, callbacks=[finetuning, record])
    trainer.fit(BiasCorrected(), [mx.zeros((2,))] * 3)  # 3 updates an epoch
    # A constant gradient: each bias-corrected Adam update from fresh state moves a weight by its rate. With
    # group 0's step count (6) the new group's first updates would be smaller.
    backbone = [r["backbone.w"][0] for r in record.weights]
    np.testing.assert_allclose(backbone, [0.0, 0.0, -0.03], rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(record.weights[-1]["head.w"], [-0.9], rtol=1e-5)
    main, added = trainer.optimizer.optimizers
    assert (main.state["step"].item(), added.state["step"].item()) == (9, 3)


def test_a_callback_fitted_again_by_a_new_trainer_unfreezes_at_its_epoch_again(tmp_path):
    # The first fit ends in the unfreeze epoch: the second's epoch 0 is not taken for a resume inside it.
    finetuning = BackboneFinetuning(unfreeze_backbone_at_epoch=0)
    for run in ("first", "second"):
        record = Record()
        trainer = quiet_trainer(tmp_path / run, max_epochs=1, callbacks=[finetuning, record])
        trainer.fit(Descends(lr=0.1), [mx.zeros((2,))])
        assert record.rates == [[0.1, 0.01]], run
        np.testing.assert_allclose(record.weights[-1]["backbone.w"], [-0.01], rtol=1e-5, err_msg=run)


def test_a_trainer_fitted_again_past_the_unfreeze_leaves_the_main_rate_as_configured(tmp_path):
    # The second fit configures a new optimizer, without the backbone's group: the first fit's backbone
    # rate is not carried over to it (it would set the only group's, the main rate).
    record = Record()
    finetuning = BackboneFinetuning(unfreeze_backbone_at_epoch=1)
    trainer = quiet_trainer(tmp_path, max_epochs=2, callbacks=[finetuning, record])
    module = Descends(lr=0.1)
    trainer.fit(module, [mx.zeros((2,))])
    trainer.max_epochs = 4
    trainer.fit(module, [mx.zeros((2,))])
    assert [rates[0] for rates in record.rates] == [0.1] * 4
    head = [0.0] + [r["head.w"][0] for r in record.weights]
    np.testing.assert_allclose(np.diff(head), [-0.1] * 4, rtol=1e-5)


def test_the_callbacks_are_exported_as_lightnings():
    from audiotrain.train import callbacks

    assert callbacks.BackboneFinetuning is BackboneFinetuning
    assert callbacks.BaseFinetuning is BaseFinetuning
    assert not [name for name in ("ModelCheckpoint",) if not hasattr(callbacks, name)]


def test_the_learning_rate_monitor_names_the_added_group_by_the_optimizer_configured(tmp_path):
    from audiotrain.train.callbacks import LearningRateMonitor

    from tasks import RecordingLogger

    logger = RecordingLogger()
    finetuning = BackboneFinetuning(unfreeze_backbone_at_epoch=1, backbone_initial_lr=0.01)
    monitor = LearningRateMonitor(logging_interval="epoch")
    trainer = quiet_trainer(tmp_path, max_epochs=3, callbacks=[finetuning, monitor], logger=logger)
    trainer.fit(Descends(lr=0.1), [mx.zeros((2,))])
    logged = [
        sorted(k for k in m if k.startswith("lr-")) for _, m in logger.metrics if any("lr-" in k for k in m)
    ]
    # As Lightning's: the optimizer's series gains /pgN when a group is added (not an internal class name).
    assert logged == [["lr-SGD"], ["lr-SGD/pg1", "lr-SGD/pg2"], ["lr-SGD/pg1", "lr-SGD/pg2"]]
    # Its `lrs` (Lightning 2.6.6, the same fit: SGD 0.1, unfreeze at epoch 1 at 0.01, doubled each epoch)
    # moves the series logged before the split under the first group's name, as Lightning's does.
    assert monitor.lrs == {"lr-SGD/pg1": [0.1, 0.1, 0.1], "lr-SGD/pg2": [0.01, 0.02]}


def test_the_default_schedule_is_lightnings_unfreeze_at_epoch_10_at_a_tenth_of_the_rate(tmp_path):
    record = Record()
    trainer = quiet_trainer(tmp_path, max_epochs=12, callbacks=[BackboneFinetuning(), record])
    trainer.fit(Descends(lr=0.1), [mx.zeros((2,))])
    assert record.rates[:10] == [[0.1]] * 10
    assert record.rates[10:] == [[0.1, 0.01], [0.1, 0.02]]  # (then doubled every epoch, as Lightning's)


class DefaultDenominator(OwnSchedule):
    def finetune_function(self, module, epoch, optimizer):
        if epoch == 1:
            self.unfreeze_and_add_param_group(module.head, optimizer)


def test_a_group_without_a_rate_or_denominator_takes_a_tenth_of_group_zeros_as_lightnings(tmp_path):
    record = Record()
    trainer = quiet_trainer(tmp_path, max_epochs=2, callbacks=[DefaultDenominator(), record])
    trainer.fit(Descends(lr=0.1), [mx.zeros((2,))])
    assert record.rates == [[0.1], [0.1, 0.01]]  # (initial_denom_lr=10.0)


class AddsFrozen(OwnSchedule):
    def finetune_function(self, module, epoch, optimizer):
        optimizer.add_param_group({"params": ["head.w"], "lr": 0.1})


class AddsTwice(OwnSchedule):
    def finetune_function(self, module, epoch, optimizer):
        self.make_trainable(module.head)
        optimizer.add_param_group({"params": ["head.w"], "lr": 0.1})
        optimizer.add_param_group({"params": ["head.w"], "lr": 0.2})


@pytest.mark.parametrize(
    "callback, match",
    [
        (AddsFrozen(), r"head.w: not trainable parameters of Descends"),
        (AddsTwice(), r"head.w: already in an added group"),
    ],
    ids=["frozen", "twice"],
)
def test_add_param_group_refuses_a_frozen_parameter_or_one_in_a_group_already(tmp_path, callback, match):
    # A frozen parameter in a group would never be updated, and one in two groups would be updated by the
    # first alone: both are refused by name rather than silently not trained as asked.
    trainer = quiet_trainer(tmp_path, max_epochs=1, callbacks=[callback])
    with pytest.raises(ValueError, match=match):
        trainer.fit(Descends(), [mx.zeros((2,))])


class AddsAParameterTree(OwnSchedule):
    def finetune_function(self, module, epoch, optimizer):
        self.make_trainable(module.head)
        optimizer.add_param_group({"params": module.head.parameters(), "lr": 0.1})


class AddsArrays(OwnSchedule):
    def finetune_function(self, module, epoch, optimizer):
        self.make_trainable(module.head)
        optimizer.add_param_group({"params": [module.head.w], "lr": 0.1})


@pytest.mark.parametrize("callback", [AddsAParameterTree(), AddsArrays()], ids=["tree", "arrays"])
def test_add_param_group_given_lightnings_parameters_says_it_takes_names(tmp_path, callback):
    # Lightning's add_param_group({"params": module.parameters(), ...}): here a parameter tree was read as
    # the names of its keys ("w: not trainable parameters"), and a list of arrays was refused with every
    # array printed whole. The error says what to pass, and prints no array.
    trainer = quiet_trainer(tmp_path, max_epochs=1, callbacks=[callback])
    with pytest.raises(TypeError, match=r"params must be parameter names") as raised:
        trainer.fit(Descends(), [mx.zeros((2,))])
    message = str(raised.value)
    assert "tree_flatten(module.backbone.trainable_parameters())" in message
    assert "unfreeze_and_add_param_group" in message and "array(" not in message


class SetsMainRate(OwnSchedule):
    def finetune_function(self, module, epoch, optimizer):
        optimizer.param_groups[0]["lr"] = 0.05


def test_setting_the_rate_of_a_scheduled_group_is_refused_rather_than_overwritten_at_the_next_step(tmp_path):
    trainer = quiet_trainer(tmp_path, max_epochs=1, callbacks=[SetsMainRate()])
    with pytest.raises(ValueError, match=r"its optimizer's learning rate is a schedule"):
        trainer.fit(Scheduled(), [mx.zeros((2,))])


def test_a_checkpoints_group_naming_a_parameter_the_module_lacks_is_refused(tmp_path):
    finetuning = BackboneFinetuning(unfreeze_backbone_at_epoch=0)
    trainer = quiet_trainer(tmp_path, max_epochs=1, callbacks=[finetuning])
    trainer.fit(Descends(), [mx.zeros((2,))])
    saved = finetuning.state_dict()
    saved["added_param_groups"][0]["params"] = ["neck.w"]  # (a checkpoint of another model)
    with pytest.raises(ValueError, match=r"Descends has no parameter neck.w"):
        finetuning.restore_param_groups(trainer, saved)


class BackboneWithItsBatchNormFrozen(BackboneFinetuning):
    """A BackboneFinetuning whose freeze_before_training freezes the BatchNorm weights too."""

    def freeze_before_training(self, module):
        self.freeze(module.backbone, train_bn=False)


@pytest.mark.parametrize("train_bn", [True, False])
def test_backbone_finetunings_train_bn_decides_for_batchnorm_weights_its_subclass_froze(tmp_path, train_bn):
    moved = _moves_by_epoch(
        tmp_path, BackboneWithItsBatchNormFrozen(unfreeze_backbone_at_epoch=1, train_bn=train_bn)
    )
    unfrozen = ["backbone.layers.0.weight", *_BN] if train_bn else ["backbone.layers.0.weight"]
    assert moved == [["head.weight"], [*unfrozen, "head.weight"], [*unfrozen, "head.weight"]]


@pytest.mark.parametrize("verbose", [True, False])
def test_verbose_shows_both_rates_at_each_change_rounded_to_rounding_digits(tmp_path, capsys, verbose):
    # Lightning's lines reach the terminal (its package logger has a handler); here, with no logging set
    # up, verbose=True showed nothing: the lines went to a logger without one.
    finetuning = BackboneFinetuning(
        unfreeze_backbone_at_epoch=0, lambda_func=lambda epoch: 1 / 3, verbose=verbose, rounding=4
    )
    trainer = quiet_trainer(tmp_path, max_epochs=2, callbacks=[finetuning])
    trainer.fit(Descends(lr=0.1), [mx.zeros((2,))])
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Current lr")]
    expected = ["Current lr: 0.1, Backbone lr: 0.01", "Current lr: 0.1, Backbone lr: 0.0033"]
    assert said == (expected if verbose else [])


@pytest.mark.parametrize("bad", [0.0, -0.01, float("nan"), "0.1"])
def test_a_checkpoints_bad_previous_backbone_lr_is_refused_by_name(bad):
    with pytest.raises(ValueError, match=r"previous_backbone_lr must be a positive"):
        BackboneFinetuning().load_state_dict(
            {"added_param_groups": [], "last_epoch": 2, "previous_backbone_lr": bad}
        )


class FreezesAtStep(Callback):
    """Freezes `fc1` at a global step, from a batch hook (as a Lightning user freezes after N steps)."""

    def __init__(self, step):
        self.step, self.fc1_after = step, []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            pl_module.fc1.freeze()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.fc1_after.append(np.array(pl_module.fc1.weight))


def test_a_freeze_inside_an_epoch_is_said_to_wait_for_the_next_epoch_start(tmp_path):
    """`fc1.freeze()` in on_train_batch_start kept fc1 training to the end of the epoch without a word (the
    compiled step is rebuilt at epoch starts only); Lightning's freeze acts at the next step. Now the epoch's
    end warns, naming a parameter and where to freeze instead; from the next epoch on fc1 is frozen."""
    freezer = FreezesAtStep(2)
    with pytest.warns(
        UserWarning, match=r"frozen inside epoch 0 \(e\.g\. fc1\.bias, fc1\.weight: .*next epoch"
    ):
        quiet_trainer(tmp_path, max_epochs=2, callbacks=[freezer]).fit(TinyClassifier(), make_batches(64))
    per_batch = freezer.fc1_after  # 4 batches an epoch
    assert not np.array_equal(per_batch[2], per_batch[3])  # (epoch 0 trained on: as the warning says)
    assert all(np.array_equal(per_batch[3], later) for later in per_batch[4:])


def test_a_freeze_after_the_epochs_last_step_is_not_warned_of(tmp_path):
    """A freeze in the last batch's on_train_batch_end (as a Lightning user freezes after N steps, N the
    epoch's length) was warned of as waiting for the next epoch start, though no batch of the epoch came
    after it: the next step is the next epoch's first, which trains without fc1, as Lightning's would."""

    class FreezesAfterTheLastStep(Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.current_epoch == 0 and batch_idx == trainer.num_training_batches - 1:
                pl_module.fc1.freeze()

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet_trainer(tmp_path, max_epochs=2, callbacks=[FreezesAfterTheLastStep()]).fit(
            TinyClassifier(), make_batches(64)
        )


def test_a_freeze_at_an_epoch_start_is_not_warned_of(tmp_path):
    class FreezesAtEpoch(Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch == 1:
                pl_module.fc1.freeze()

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet_trainer(tmp_path, max_epochs=2, callbacks=[FreezesAtEpoch()]).fit(
            TinyClassifier(), make_batches(64)
        )


class FreezesEveryOtherBatch(Callback):
    """A GAN's habit: the discriminator (here `fc1`) rests on odd batches, frozen in on_train_batch_start."""

    def __init__(self):
        self.fc1_after = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx % 2:
            pl_module.fc1.freeze()
        else:
            pl_module.fc1.unfreeze()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.fc1_after.append(np.array(pl_module.fc1.weight))


def _fc1_per_batch_compiled_and_eager(tmp_path, freezer, max_epochs: int, samples: int) -> dict[bool, list]:
    """fc1's weights after each batch of a fit whose batch hook (`freezer()`) freezes and unfreezes it,
    compiled (True) and eager (False), checked equal batch by batch."""
    runs = {}
    for compile_ in (True, False):
        mx.random.seed(0)
        module, callback = TinyClassifier(), freezer()
        with pytest.warns(UserWarning, match=r"inside epoch 0 .*next epoch start"):
            quiet_trainer(tmp_path, max_epochs=max_epochs, compile=compile_, callbacks=[callback]).fit(
                module, make_batches(samples)
            )
        runs[compile_] = callback.fc1_after
    assert len(runs[True]) == len(runs[False])
    for compiled, eager in zip(runs[True], runs[False], strict=True):
        np.testing.assert_array_equal(compiled, eager)
    return runs


@pytest.mark.parametrize("freezer", [lambda: FreezesAtStep(2), FreezesEveryOtherBatch])
def test_a_freeze_inside_an_epoch_trains_the_same_parameters_compiled_and_eager(tmp_path, freezer):
    """With compile=False a freeze in a batch hook acted at once, where the compiled step trains what the
    epoch started with (the warning says so): fc1 frozen every other batch rested only in the eager fit,
    whose weights then differed from the compiled fit's. And the compiled step, traced at its first call
    (after that batch's hook), trained in epoch 1 what the hook had unfrozen, not what the epoch started
    with. Both now train what the epoch started with, bit for bit alike."""
    runs = _fc1_per_batch_compiled_and_eager(tmp_path, freezer, max_epochs=2, samples=64)
    # 4 batches an epoch: epoch 0 trains fc1 throughout; epoch 1 starts with fc1 frozen (both hooks froze
    # it last in epoch 0), and so trains none of it, unfrozen by a hook or not
    per_batch = runs[False]
    assert all(not np.array_equal(a, b) for a, b in zip(per_batch[:3], per_batch[1:4]))
    assert all(np.array_equal(per_batch[3], later) for later in per_batch[4:])


@pytest.mark.parametrize("compile_", [True, False])
def test_a_freeze_every_other_batch_is_warned_of_where_the_epoch_ends_as_it_began(tmp_path, compile_):
    """A generator resting every other batch (frozen on odd batches): five batches end the epoch with fc1
    trainable, as it began, and the fit trained fc1 at every batch without a word (the warning compared only
    the epoch's last step with its start). It is warned of, naming fc1."""
    module, callback = TinyClassifier(), FreezesEveryOtherBatch()
    with pytest.warns(UserWarning, match=r"frozen inside epoch 0 \(e.g. fc1\..*next epoch start"):
        quiet_trainer(tmp_path, max_epochs=1, compile=compile_, callbacks=[callback]).fit(
            module, make_batches(80)
        )
    assert len(callback.fc1_after) == 5
    assert all(not np.array_equal(a, b) for a, b in zip(callback.fc1_after, callback.fc1_after[1:]))


def test_a_freeze_inside_an_accumulation_window_of_an_eager_fit_trains_on(tmp_path):
    """compile=False, accumulate_grad_batches=2, fc1 frozen every other batch: the window's second batch
    had no gradient for fc1 and the fit stopped with a bare KeyError: 'weight'. It trains what the epoch
    started with, as the compiled fit does, bit for bit."""
    runs = []
    for compile_ in (True, False):
        mx.random.seed(0)
        module = TinyClassifier()
        with pytest.warns(UserWarning, match=r"inside epoch 0 .*next epoch start"):
            quiet_trainer(
                tmp_path,
                max_epochs=2,
                compile=compile_,
                accumulate_grad_batches=2,
                callbacks=[FreezesEveryOtherBatch()],
            ).fit(module, make_batches(96))
        runs.append(weights(module))
    for name, compiled in runs[0].items():
        assert_same_numbers(runs[1][name], compiled, err_msg=name)


def test_a_freeze_in_a_batch_hook_trains_alike_where_a_short_last_batch_is_traced_again(tmp_path):
    """MLX traces a compiled step again for a new batch shape (82 samples: five batches of 16, then one of
    2). That trace ran over what the hook had frozen by then (fc1, at the odd last batch), where the eager
    step trains what the epoch started with: fc1 rested at the last batch compiled, moved eager."""
    runs = _fc1_per_batch_compiled_and_eager(tmp_path, FreezesEveryOtherBatch, max_epochs=1, samples=82)
    assert len(runs[True]) == 6
    assert not np.array_equal(runs[True][-2], runs[True][-1])  # (the epoch started with fc1 training)


def test_an_eager_step_walks_the_parameter_tree_only_where_a_hook_changed_the_freezing(tmp_path, monkeypatch):
    """An eager step checks that it trains what it was built for (a hook may have frozen something since):
    walking the parameter tree for it at every step cost 1.35 ms a step on a 288-array model; the frozen
    names each submodule keeps are compared instead, and the tree is walked only where they changed."""
    from audiotrain.train import step

    walks = []
    real = step.trainable_names
    monkeypatch.setattr(step, "trainable_names", lambda module: walks.append(1) or real(module))
    quiet_trainer(tmp_path, max_epochs=2, compile=False).fit(TinyClassifier(), make_batches(64))
    unchanged = len(walks)
    walks.clear()
    mx.random.seed(0)
    with pytest.warns(UserWarning, match=r"inside epoch 0 .*next epoch start"):
        quiet_trainer(
            tmp_path / "frozen", max_epochs=1, compile=False, callbacks=[FreezesEveryOtherBatch()]
        ).fit(TinyClassifier(), make_batches(64))
    assert unchanged <= 4  # (the steps' builds, once a fit: not one a step of its 8)
    assert len(walks) >= 4  # (where a hook froze fc1, every other step checks what it trains)


class DescendsTwoOptimizers(Descends):
    def configure_optimizers(self):
        return optim.MultiOptimizer(
            [optim.SGD(learning_rate=self.lr), optim.Adam(learning_rate=self.lr)],
            [lambda path, _: path.startswith("head.")],
        )


def test_the_learning_rate_monitor_keeps_a_multioptimizers_names_when_a_group_is_added(tmp_path):
    from audiotrain.train.callbacks import LearningRateMonitor

    from tasks import RecordingLogger

    logger = RecordingLogger()
    finetuning = BackboneFinetuning(unfreeze_backbone_at_epoch=1, backbone_initial_lr=0.01)
    monitor = LearningRateMonitor(logging_interval="epoch")
    trainer = quiet_trainer(tmp_path, max_epochs=2, callbacks=[finetuning, monitor], logger=logger)
    trainer.fit(DescendsTwoOptimizers(lr=0.1), [mx.zeros((2,))])
    logged = [
        sorted(k for k in m if k.startswith("lr-")) for _, m in logger.metrics if any("lr-" in k for k in m)
    ]
    # Each group by its own optimizer's class before and after the add (the added group is a copy of the
    # first's), not lr-MultiOptimizer/pgN from the epoch the group is added on: a series would end there.
    assert logged == [["lr-Adam/pg2", "lr-SGD/pg1"], ["lr-Adam/pg2", "lr-SGD/pg1", "lr-SGD/pg3"]]


def test_verbose_shows_the_rates_as_lightning_with_the_default_rounding(tmp_path, capsys):
    # Lightning 2.6.6 printed these three lines for the same schedule (unfreeze at epoch 1, lambda 1.5, main
    # rate 0.1); here MLX's float32 rates, read back as Python floats, printed "Current lr: 0.10000000149,
    # Backbone lr: 0.010000000149" with the default rounding=12.
    finetuning = BackboneFinetuning(unfreeze_backbone_at_epoch=1, lambda_func=lambda epoch: 1.5, verbose=True)
    trainer = quiet_trainer(tmp_path, max_epochs=4, callbacks=[finetuning])
    trainer.fit(Descends(lr=0.1), [mx.zeros((2,))])
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Current lr")]
    assert said == [
        "Current lr: 0.1, Backbone lr: 0.01",
        "Current lr: 0.1, Backbone lr: 0.015",
        "Current lr: 0.1, Backbone lr: 0.0225",
    ]


def test_flatten_modules_lists_the_layers_and_the_modules_holding_parameters_not_the_containers():
    """flatten_modules of nested blocks gave every container too (6 modules here), where Lightning 2.6.6
    gives the leaf modules and the modules holding parameters of their own: 4 for a Sequential of
    (Sequential of Linear and BatchNorm), Linear and ReLU."""

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = [nn.Linear(2, 2), nn.BatchNorm(2)]

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = [Block(), nn.Linear(2, 2), nn.ReLU()]

    assert [type(m) for m in BaseFinetuning.flatten_modules(Outer())].count(nn.Linear) == 2
    assert len(BaseFinetuning.flatten_modules(Outer())) == 4

    class Scaled(Block):  # a parent with a parameter of its own is kept, as Lightning keeps one
        def __init__(self):
            super().__init__()
            self.scale = mx.ones((1,))

    flat = BaseFinetuning.flatten_modules([Scaled(), nn.Linear(2, 2)])
    assert len(flat) == 4 and any(isinstance(m, Scaled) for m in flat)


def test_a_default_learning_rate_monitor_logs_an_added_group_at_its_optimizers_schedule_interval(tmp_path):
    """A group added by a fine-tuning callback to an optimizer with a per-epoch lr_scheduler was logged at the
    logging steps (its rate has no schedule of its own), so with fewer batches an epoch than
    log_every_n_steps a LearningRateMonitor() never logged it. In Lightning 2.6.6 it is a parameter group of
    that optimizer and shares its lr_scheduler's interval: SGD(lr=0.1) with a per-epoch StepLR, 2 batches an
    epoch, a group added at epoch 1: lr-SGD/pg2 is logged at the starts of epochs 1, 2, 3 (steps 2, 4, 6),
    as lr-SGD/pg1. (Its values differ by design: here the group's rate is not scaled by the schedule.)"""
    from audiotrain.train.callbacks import LearningRateMonitor
    from audiotrain.train.schedulers import StepLRScheduler

    from tasks import RecordingLogger

    class Stepped(Descends):
        def configure_optimizers(self):
            return [optim.SGD(learning_rate=0.1)], [StepLRScheduler(0.1, 1, gamma=0.5)]

    class AtEpochOne(OwnSchedule):
        def finetune_function(self, module, epoch, optimizer):
            if epoch == 1:
                self.unfreeze_and_add_param_group(module.head, optimizer, lr=0.1)

    logger, monitor = RecordingLogger(), LearningRateMonitor()
    trainer = quiet_trainer(tmp_path, max_epochs=4, callbacks=[AtEpochOne(), monitor], logger=logger)
    trainer.fit(Stepped(), [mx.zeros((2,))] * 2)
    assert [step for step, m in logger.metrics if "lr-SGD/pg2" in m] == [2, 4, 6]
    assert len(monitor.lrs["lr-SGD/pg2"]) == 3
    assert monitor.lrs["lr-SGD/pg1"] == pytest.approx([0.1, 0.05, 0.025, 0.0125])
