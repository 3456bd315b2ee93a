"""The fit loop's schedule and arguments as a Lightning user expects them: when validation runs
(`val_check_interval`, `check_val_every_n_epoch`, `limit_val_batches=0`, a `max_steps` stop), the train/eval
modes a user set, and Lightning's spellings of the arguments (`verbose`, `precision=None`, a DataModule in
the loader's place, `ckpt_path="last"` on a first run, `-1` for no limit).

The expected validation steps are Lightning 2.6's for the same settings (5 or 4 batches an epoch)."""

import json
import warnings

from audiotrain import DataLoader, DataModule, PossibleUserWarning, Trainer
from audiotrain.train.callbacks import Callback, ModelCheckpoint

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from tasks import TinyClassifier, make_batches, make_data, weights


class Validations(Callback):
    """(epoch, global_step) at each validation in `fit` (not the sanity check), and every hook called."""

    def __init__(self):
        self.at: list[tuple[int, int]] = []
        self.hooks: list[str] = []

    def on_sanity_check_start(self, trainer, module):
        self.hooks.append("on_sanity_check_start")

    def on_validation_start(self, trainer, module):
        self.hooks.append("on_validation_start")
        if not trainer.sanity_checking:
            self.at.append((trainer.current_epoch, trainer.global_step))

    def on_validation_end(self, trainer, module):
        self.hooks.append("on_validation_end")


def fit(tmp_path, batches=5, val=True, **kw):
    """`batches` training batches an epoch (16 samples each); returns (trainer, validations)."""
    validations = Validations()
    kw.setdefault("max_epochs", 2)
    kw.setdefault("enable_checkpointing", False)
    t = Trainer(
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        num_sanity_val_steps=kw.pop("num_sanity_val_steps", 0),
        callbacks=[validations, *kw.pop("callbacks", [])],
        **kw,
    )
    t.fit(TinyClassifier(), make_batches(16 * batches), make_batches(32, seed=1) if val else None)
    return t, validations


# ---------------------------------------------------------------- an int val_check_interval (#2)
def test_an_int_val_check_interval_counts_batches_within_each_epoch(tmp_path):
    # It counted across epochs: after steps 2, 4, 6, 8, 10.
    _, validations = fit(tmp_path, val_check_interval=2)
    assert validations.at == [(0, 2), (0, 4), (1, 7), (1, 9)]


def test_an_int_val_check_interval_validates_only_in_the_epochs_check_val_every_n_epoch_picks(tmp_path):
    _, validations = fit(tmp_path, val_check_interval=2, check_val_every_n_epoch=2)
    assert validations.at == [(1, 7), (1, 9)]


def test_check_val_every_n_epoch_none_counts_an_int_interval_across_epochs(tmp_path):
    _, validations = fit(tmp_path, val_check_interval=2, check_val_every_n_epoch=None)
    assert validations.at == [(0, 2), (0, 4), (1, 6), (1, 8), (1, 10)]
    _, validations = fit(tmp_path / "longer", val_check_interval=7, check_val_every_n_epoch=None)
    assert validations.at == [(1, 7)]


def test_an_int_val_check_interval_longer_than_an_epoch_is_refused_before_fit_starts(tmp_path):
    validations = Validations()
    t = Trainer(
        max_epochs=2,
        val_check_interval=7,
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        logger=False,
        callbacks=[validations],
    )
    with pytest.raises(
        ValueError, match=r"val_check_interval=7\) must be at most .* \(5\).*check_val_every_n_epoch=None"
    ):
        t.fit(TinyClassifier(), make_batches(80), make_batches(32, seed=1))
    assert t.global_step == 0 and validations.hooks == []
    assert not (tmp_path / "checkpoints").exists()  # refused before anything was written


# ---------------------------------------------------------------- a float val_check_interval (#10)
def test_a_fraction_validates_every_int_fraction_times_batches_and_at_the_end_only_where_that_lands(tmp_path):
    _, odd = fit(tmp_path / "odd", batches=5, val_check_interval=0.5)
    assert odd.at == [(0, 2), (0, 4), (1, 7), (1, 9)]  # int(0.5 x 5) = 2: not after batch 5
    _, even = fit(tmp_path / "even", batches=4, val_check_interval=0.5)
    assert even.at == [(0, 2), (0, 4), (1, 6), (1, 8)]


def test_fast_dev_run_validates_once_whatever_the_interval(tmp_path):
    _, validations = fit(tmp_path, fast_dev_run=2, val_check_interval=7)
    assert validations.at == [(0, 2)]


def test_a_monitoring_checkpoint_saves_at_each_validation_and_not_at_an_epoch_end_without_one(tmp_path):
    # 0.5 of 5 batches: the epoch ends (steps 5, 10) are not validated, so saving there would rank the
    # score of the validation before them a second time (as Lightning, which saves at validation ends).
    mc = ModelCheckpoint(monitor="val_loss", save_top_k=-1, filename="{step}")
    fit(tmp_path, val_check_interval=0.5, callbacks=[mc], enable_checkpointing=True)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "step=2",
        "step=4",
        "step=7",
        "step=9",
    ]


# ---------------------------------------------------------------- limit_val_batches=0 (#11)
@pytest.mark.parametrize("zero", [0, 0.0])  # Lightning's docs: 0.0 (a fraction) turns it off as 0 does
def test_limit_val_batches_zero_turns_validation_off(tmp_path, zero):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t, validations = fit(tmp_path, limit_val_batches=zero, num_sanity_val_steps=2)
    assert validations.hooks == [] and t.global_step == 10
    assert not [w for w in caught if "yielded no batches" in str(w.message)]
    assert not any(name.startswith("val_") for name in t.callback_metrics)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert t.validate(TinyClassifier(), make_batches(32)) == []  # Lightning's empty result
    assert validations.hooks == [] and not [w for w in caught if "yielded no batches" in str(w.message)]


# ---------------------------------------------------------------- a max_steps stop (#9)
def test_a_max_steps_stop_in_mid_epoch_validates_there_once(tmp_path):
    """Kept (unlike Lightning, see the README): the weights training ends with get a score. Where the stop
    lands on a check batch that validation is not run a second time (it was)."""
    _, on_a_check = fit(tmp_path / "a", batches=4, max_epochs=5, max_steps=2, val_check_interval=0.5)
    assert on_a_check.at == [(0, 2)]
    t, between = fit(tmp_path / "b", batches=4, max_epochs=5, max_steps=3, val_check_interval=0.5)
    assert between.at == [(0, 2), (0, 3)]
    assert t.current_epoch == 0  # the epoch stopped in (Lightning counts it as ended: 1)


def test_validates_after_this_batch_is_true_at_the_step_max_steps_ends_the_fit(tmp_path):
    """A callback (ModelCheckpoint every N steps with a monitor) learns in on_train_batch_end that the
    validation of a max_steps stop follows that batch, as it learns it for a scheduled one."""
    seen = []

    class Watch(Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            seen.append(trainer.validates_after_this_batch)

    _, validations = fit(tmp_path, batches=5, max_epochs=2, max_steps=3, callbacks=[Watch()])
    assert seen == [False, False, True] and validations.at == [(0, 3)]


# ---------------------------------------------------------------- a stop request or max_time (ptl3 C1, C2)
class StopsAt(Callback):
    """After global step `step`: sets `should_stop`, or with `by_time` lets `max_time` run out there."""

    def __init__(self, step: int, by_time: bool = False):
        self.step, self.by_time = step, by_time

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            if self.by_time:
                trainer.max_time = 0.0  # (the time is up from here on)
            else:
                trainer.should_stop = True


@pytest.mark.parametrize("by_time", [False, True])
@pytest.mark.parametrize(
    "stop_at, every_n_epoch, expected",
    [
        (6, 1, [(0, 2), (0, 4), (1, 6)]),  # inside epoch 1, between its checks
        (7, 1, [(0, 2), (0, 4), (1, 7)]),  # on a check batch: validated once
        (5, 1, [(0, 2), (0, 4), (0, 5)]),  # the epoch's last batch, not a check
        (5, 2, []),  # an epoch check_val_every_n_epoch skips: none
        (5, None, [(0, 2), (0, 4), (0, 5)]),  # counted across epochs: any epoch
    ],
)
def test_a_stop_validates_where_it_ends_the_loop_under_an_int_interval(
    tmp_path, by_time, stop_at, every_n_epoch, expected
):
    """As Lightning 2.6 (paired runs): a `should_stop` that ends the loop, or max_time (Lightning's Timer
    sets `should_stop`), validates there whatever the interval; an int one did not, so the batches since
    its last check were never scored."""
    kw = {"max_time": {"hours": 1}} if by_time else {}
    t, validations = fit(
        tmp_path,
        batches=5,
        max_epochs=5,
        val_check_interval=2,
        check_val_every_n_epoch=every_n_epoch,
        callbacks=[StopsAt(stop_at, by_time)],
        **kw,
    )
    assert validations.at == expected and t.global_step == stop_at
    assert t.should_stop  # also after max_time (it was False)


def test_a_fit_that_max_time_ends_says_so_once_on_stderr_as_lightnings_timer(tmp_path, capsys):
    # A log read after an unattended run ended with the last epoch's line cut short ("Epoch 10: 16/25
    # batches") and no word of why: Lightning's max_time (a Timer) says "Time limit reached. ...".
    t, _ = fit(tmp_path, batches=5, max_epochs=5, max_time={"hours": 1}, callbacks=[StopsAt(3, by_time=True)])
    said = capsys.readouterr()
    assert t.global_step == 3 and said.out == ""
    assert said.err.count("Time limit reached. Elapsed time is 0:00:0") == 1, said.err
    assert "Signaling Trainer to stop." in said.err


def test_a_stop_request_waiting_for_min_epochs_does_not_validate_early(tmp_path):
    _, validations = fit(
        tmp_path, batches=5, max_epochs=5, min_epochs=2, val_check_interval=2, callbacks=[StopsAt(3)]
    )
    assert validations.at == [(0, 2), (0, 4), (1, 7), (1, 9)]  # it ends with epoch 1, as its checks


@pytest.mark.parametrize("epoch, steps, validated", [(0, 0, []), (1, 5, [(0, 5)])])
def test_a_stop_asked_for_at_an_epochs_start_trains_none_of_its_batches(tmp_path, epoch, steps, validated):
    """As Lightning's epoch loop, which checks `should_stop` before each batch: a stop set in
    `on_train_epoch_start` ends the fit there, that epoch's end hooks run, and nothing is trained or
    validated after it. It trained (and validated) that epoch's first batch."""
    epoch_ends = []

    class StopsAtEpochStart(Callback):
        def on_train_epoch_start(self, trainer, module):
            if trainer.current_epoch == epoch:
                trainer.should_stop = True

        def on_train_epoch_end(self, trainer, module):
            epoch_ends.append(trainer.current_epoch)

    t, validations = fit(tmp_path, batches=5, max_epochs=5, callbacks=[StopsAtEpochStart()])
    assert (t.global_step, validations.at, epoch_ends) == (steps, validated, list(range(epoch + 1)))


# ---------------------------------------------------------------- train and eval modes (precision #1)
class FreezesBatchNorm(TinyClassifier):
    def __init__(self, freeze_in: str | None = None):
        super().__init__(batchnorm=True, dropout=0.3)
        self.freeze_in = freeze_in

    def on_fit_start(self):
        if self.freeze_in == "on_fit_start":
            self.norm.eval()

    def on_train_start(self):
        if self.freeze_in == "on_train_start":
            self.norm.eval()


class Modes(Callback):
    """(module.training, module.norm.training) at each training batch."""

    def __init__(self):
        self.seen: list[tuple[bool, bool]] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.seen.append((module.training, module.norm.training))


def _fit_modes(tmp_path, module) -> list[tuple[bool, bool]]:
    modes = Modes()
    t = Trainer(
        max_epochs=2,
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        logger=False,
        enable_checkpointing=False,
        callbacks=[modes],
    )
    t.fit(module, make_batches(32), make_batches(32, seed=1))
    return modes.seen


def test_a_batchnorm_frozen_before_fit_stays_frozen_with_lightnings_warning(tmp_path):
    module = FreezesBatchNorm()
    module.norm.eval()
    before = np.array(module.norm.running_mean)
    # Lightning 2.6.6's category: PossibleUserWarning ("Found 1 module(s) in eval mode at the start of
    # training."), which `ignore::audiotrain.PossibleUserWarning` (README's advice) silences with the rest.
    with pytest.warns(
        PossibleUserWarning, match=r"found 1 module\(s\) in eval mode at the start of training \(norm\)"
    ):
        seen = _fit_modes(tmp_path, module)
    assert seen == [(True, False)] * 4
    np.testing.assert_array_equal(np.array(module.norm.running_mean), before)
    assert module.training and not module.norm.training  # fit gives back the modes it was given


def test_the_eval_mode_warning_names_three_modules_and_counts_the_rest(tmp_path):
    module = FreezesBatchNorm()
    for sub in (module, module.fc1, module.fc2, module.norm, module.drop):
        sub.eval()
    with pytest.warns(
        UserWarning, match=r"found 5 module\(s\) in eval mode .* \(FreezesBatchNorm, drop, fc1 and 2 more\)"
    ):
        _fit_modes(tmp_path, module)


class Distilled(TinyClassifier):
    """A student with a teacher read under mx.stop_gradient (AdamW with weight decay, as TinyClassifier)."""

    def __init__(self, freeze_teacher: bool):
        super().__init__()
        self.teacher = TinyClassifier(dropout=0.3, batchnorm=True)
        if freeze_teacher:
            self.teacher.freeze()  # Lightning's: every weight frozen and eval mode
        else:
            self.teacher.eval()

    def compute_loss(self, batch):
        loss, metrics = super().compute_loss(batch)
        soft = mx.softmax(mx.stop_gradient(self.teacher(batch[0])), axis=-1)
        return loss - mx.mean(mx.sum(soft * nn.log_softmax(self(batch[0]), axis=-1), axis=-1)), metrics


@pytest.mark.parametrize("freeze_teacher", [True, False])
def test_the_eval_mode_warning_says_whether_a_teacher_in_eval_mode_is_frozen_or_still_changes(
    tmp_path, freeze_teacher
):
    """A teacher left trainable changed under weight decay with no gradient reaching it, and the warning
    advised "call model.train() before fit", which turns a frozen teacher's Dropout on."""
    module = Distilled(freeze_teacher)
    before = weights(module.teacher)
    with pytest.warns(UserWarning, match=r"in eval mode at the start of training \(teacher, ") as caught:
        Trainer(max_epochs=1, default_root_dir=tmp_path, enable_progress_bar=False, logger=False).fit(
            module, make_batches(32)
        )
    (message,) = [str(w.message) for w in caught if "eval mode at the start" in str(w.message)]
    after = weights(module.teacher)
    changed = any(not np.array_equal(before[k], after[k]) for k in before)
    assert changed != freeze_teacher
    assert ("teacher: every weight frozen" in message) == freeze_teacher
    assert ("teacher: in eval mode with weights that train" in message) != freeze_teacher


class KeepsItsNormInEval(FreezesBatchNorm):
    """Its own train() keeps the BatchNorm in eval mode, as CLAPTrainModule does under batchnorm_eval."""

    def train(self, mode: bool = True):
        super().train(mode)
        self.norm.eval()
        return self


def test_modules_that_the_modules_own_train_keeps_in_eval_are_not_warned_of(tmp_path):
    # "call model.train() before fit" would change nothing for them: the warning only misled.
    module = KeepsItsNormInEval()
    module.train()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seen = _fit_modes(tmp_path, module)
    assert seen == [(True, False)] * 4
    assert not any("in eval mode at the start of training" in str(w.message) for w in caught)
    # Another module in eval is still named, alone; the modes fit was given are not changed by the check.
    module = KeepsItsNormInEval()
    module.train()
    module.drop.eval()
    with pytest.warns(
        UserWarning, match=r"found 1 module\(s\) in eval mode at the start of training \(drop\)"
    ):
        seen = _fit_modes(tmp_path / "drop", module)
    assert seen == [(True, False)] * 4 and not module.drop.training


class TrainNeedsItsMode(FreezesBatchNorm):
    """An override of train() whose mode has no default (MLX's has one)."""

    def train(self, mode):
        return super().train(mode)


def test_a_train_override_that_needs_its_mode_still_fits_and_warns(tmp_path):
    # The eval-mode warning asks the module's own train() what it keeps in eval: one that cannot be called
    # without its mode must not end fit.
    module = TrainNeedsItsMode()
    module.norm.eval()
    with pytest.warns(
        UserWarning, match=r"found 1 module\(s\) in eval mode at the start of training \(norm\)"
    ):
        seen = _fit_modes(tmp_path, module)
    assert seen == [(True, False)] * 4


@pytest.mark.parametrize("hook, warned", [("on_fit_start", True), ("on_train_start", False)])
def test_a_batchnorm_frozen_in_a_start_hook_stays_frozen(tmp_path, hook, warned):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seen = _fit_modes(tmp_path, FreezesBatchNorm(freeze_in=hook))
    assert seen == [(True, False)] * 4
    # As Lightning, which looks between the sanity check and on_train_start.
    assert any("in eval mode at the start of training" in str(w.message) for w in caught) == warned


def test_a_module_in_train_mode_trains_without_the_warning(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seen = _fit_modes(tmp_path, FreezesBatchNorm())
    assert not [w for w in caught if "eval mode" in str(w.message)]
    assert seen == [(True, True)] * 4


# ---------------------------------------------------------- Lightning's spellings (#12, precision minor)
def test_validate_and_test_accept_verbose(tmp_path):
    t = Trainer(default_root_dir=tmp_path, enable_progress_bar=False, logger=False)
    module = TinyClassifier()
    [validated] = t.validate(module, make_batches(32), verbose=False)
    [tested] = t.test(module, make_batches(32), verbose=True)
    assert "val_loss" in validated and "test_loss" in tested


def test_precision_none_is_32():
    assert Trainer(precision=None).precision == "32"


class Batches(DataModule):
    def train_dataloader(self):
        return make_batches(32)

    def val_dataloader(self):
        return make_batches(32, seed=1)

    def test_dataloader(self):
        return make_batches(32, seed=2)

    def predict_dataloader(self):
        return [x for x, _ in make_batches(32, seed=3)]


def test_a_datamodule_in_the_loaders_place_is_the_datamodule(tmp_path):
    t = Trainer(max_epochs=1, default_root_dir=tmp_path, enable_progress_bar=False, logger=False)
    module = TinyClassifier()
    t.fit(module, Batches())
    assert t.global_step == 2 and "val_loss" in t.callback_metrics
    assert "val_loss" in t.validate(module, dataloaders=Batches())[0]  # (Lightning's keyword too)
    assert "test_loss" in t.test(module, Batches())[0]
    assert len(t.predict(module, Batches())) == 2
    with pytest.raises(TypeError, match="got a DataModule as the loader and datamodule= too"):
        t.test(module, Batches(), datamodule=Batches())


def test_ckpt_path_last_on_a_first_run_warns_and_trains_from_scratch(tmp_path):
    mc = ModelCheckpoint(dirpath=tmp_path / "ck", save_last=True)
    t = Trainer(
        max_epochs=1, default_root_dir=tmp_path, enable_progress_bar=False, logger=False, callbacks=[mc]
    )
    with pytest.warns(UserWarning, match=r'ckpt_path="last"\): nothing is saved yet, so training starts'):
        t.fit(TinyClassifier(), make_batches(32), make_batches(32, seed=1), ckpt_path="last")
    assert t.global_step == 2 and (tmp_path / "ck" / "last").is_dir()
    # The next run resumes from it, as the idiom means.
    again = Trainer(max_epochs=2, default_root_dir=tmp_path, enable_progress_bar=False, logger=False,
                    callbacks=[ModelCheckpoint(dirpath=tmp_path / "ck", save_last=True)])  # fmt: skip
    again.fit(TinyClassifier(), make_batches(32), make_batches(32, seed=1), ckpt_path="last")
    assert again.global_step == 4 and again.history["epoch"] == [0, 1]


def test_ckpt_path_last_without_a_last_but_with_other_saves_is_still_refused_by_name(tmp_path):
    mc = ModelCheckpoint(dirpath=tmp_path / "ck", filename="{step}")
    Trainer(
        max_epochs=1, default_root_dir=tmp_path, enable_progress_bar=False, logger=False, callbacks=[mc]
    ).fit(TinyClassifier(), make_batches(32))
    t = Trainer(max_epochs=2, default_root_dir=tmp_path, enable_progress_bar=False, logger=False,
                callbacks=[ModelCheckpoint(dirpath=tmp_path / "ck", filename="{step}")])  # fmt: skip
    with pytest.raises(ValueError, match="keeps no `last`.*step=2"):
        t.fit(TinyClassifier(), make_batches(32), ckpt_path="last")


@pytest.mark.parametrize("flag", ["max_steps", "max_epochs"])
def test_minus_one_means_no_limit(tmp_path, flag):
    other = {"max_steps": {"max_epochs": 1}, "max_epochs": {"max_steps": 3}}[flag]
    t, _ = fit(tmp_path, val=False, **{flag: -1, **other})
    assert getattr(t, flag) is None
    assert t.global_step == (5 if flag == "max_steps" else 3)
    with pytest.raises(ValueError, match="set max_epochs, max_steps or max_time"):
        Trainer(max_epochs=-1, max_steps=-1).fit(TinyClassifier(), make_batches(32))
    with pytest.raises(ValueError, match=rf"Trainer\({flag}=-2\): expected a positive int, or None or -1"):
        Trainer(**{flag: -2})


class GrowingData:
    """A dataset whose `set_epoch` makes each epoch longer (a curriculum adding samples): 16 samples, then 32."""

    def __init__(self):
        self.x, self.y = make_data(64)
        self.n = 16

    def set_epoch(self, epoch):
        self.n = 16 * (epoch + 1)

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def test_a_training_loader_longer_than_when_fit_started_is_cut_there_with_a_warning(tmp_path):
    # As Lightning without reload_dataloaders_every_n_epochs (refused here), an epoch has the batches the loader
    # had when fit started; the samples past them are left out, which must not go unsaid.
    t = Trainer(
        max_epochs=3, default_root_dir=tmp_path, enable_progress_bar=False, enable_checkpointing=False
    )
    with pytest.warns(
        UserWarning, match=r"has 4 batches in epoch 1, but this fit's epochs are 2 batches long"
    ) as caught:
        t.fit(TinyClassifier(), DataLoader(GrowingData(), batch_size=8))
    assert t.global_step == 6 and len([w for w in caught if "fit's epochs are" in str(w.message)]) == 1


# ---------------------------------------------------------------- reload_dataloaders_every_n_epochs
class Samples:
    def __init__(self, n):
        self.x, self.y = make_data(n)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


class Curriculum(DataModule):
    """More samples every epoch it is asked at (16 + 8 x current_epoch, batches of 8), recording when."""

    def __init__(self):
        self.asked = {"train": [], "val": []}

    def train_dataloader(self):
        epoch = self.trainer.current_epoch
        self.asked["train"].append(epoch)
        return DataLoader(Samples(16 + 8 * epoch), batch_size=8, shuffle=True)

    def val_dataloader(self):
        self.asked["val"].append(self.trainer.current_epoch)
        return DataLoader(Samples(16), batch_size=8)


class Epochs(Callback):
    def __init__(self):
        self.batches = []

    def on_train_epoch_start(self, trainer, module):
        self.batches.append(trainer.num_training_batches)


@pytest.mark.parametrize(("check_val_every_n_epoch", "val_asked"), [(1, [0, 2, 4]), (3, [0, 2, 5])])
def test_reload_dataloaders_every_n_epochs_asks_for_the_loaders_when_lightning_does(
    tmp_path, check_val_every_n_epoch, val_asked
):
    # It was refused ("Lightning's flag has no counterpart here"). Lightning asks for the training loader
    # at the start of epochs 0, N, 2N, ... and for the validation loader at the first validation of an
    # epoch N or more after its last; an epoch is as long as the loader it iterates.
    dm, epochs = Curriculum(), Epochs()
    t = Trainer(
        max_epochs=6,
        reload_dataloaders_every_n_epochs=2,
        check_val_every_n_epoch=check_val_every_n_epoch,
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        enable_checkpointing=False,
        callbacks=[epochs],
    )
    t.fit(TinyClassifier(), datamodule=dm)
    assert dm.asked["train"] == [0, 2, 4]
    assert dm.asked["val"] == val_asked
    assert epochs.batches == [2, 2, 4, 4, 6, 6]
    assert t.global_step == 24


@pytest.mark.filterwarnings("ignore:The checkpoint resumed holds the state of callbacks")  # (no checkpoints)
def test_a_fit_resumed_mid_curriculum_goes_on_as_the_straight_run(tmp_path):
    # Resumed in epoch 3 of a run that reloads every 2 epochs, the loaders are asked for with current_epoch
    # 2, as the straight run asked for those it iterated there, and the position in the epoch comes back.
    def fit(root, ckpt_path=None):
        dm = Curriculum()
        t = Trainer(
            max_epochs=5,
            reload_dataloaders_every_n_epochs=2,
            default_root_dir=root,
            enable_progress_bar=False,
            enable_checkpointing=ckpt_path is None,
            callbacks=[]
            if ckpt_path
            else [ModelCheckpoint(dirpath=root, every_n_train_steps=2, save_top_k=-1)],
        )
        module = TinyClassifier()
        t.fit(module, datamodule=dm, ckpt_path=ckpt_path)
        return dm.asked["train"], weights(module), t.global_step

    straight_asked, straight, steps = fit(tmp_path / "a")
    assert straight_asked == [0, 2, 4] and steps == 2 + 2 + 4 + 4 + 6
    resumed_asked, resumed, resumed_steps = fit(tmp_path / "b", tmp_path / "a" / "epoch=3-step=10")
    assert resumed_asked == [2, 4] and resumed_steps == steps
    for name in straight:
        np.testing.assert_array_equal(resumed[name], straight[name], err_msg=name)


class SizedByTheEstimate(TinyClassifier):
    def configure_optimizers(self):
        from audiotrain import OptimizerConfig
        from audiotrain.train import OneCycleScheduler

        import mlx.optimizers as optim

        total = self.trainer.estimated_stepping_batches
        return OptimizerConfig(optimizer=optim.SGD(learning_rate=OneCycleScheduler(0.1, total)))


def test_a_rebuilt_loader_that_outruns_estimated_stepping_batches_warns(tmp_path):
    # Lightning sizes estimated_stepping_batches from the first loader: a OneCycle schedule sized by it
    # (torch's raises past its total) ran its longer epochs at its final rate without a word.
    t = Trainer(
        max_epochs=4,
        reload_dataloaders_every_n_epochs=2,
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        enable_checkpointing=False,
    )
    with pytest.warns(
        UserWarning, match=r"takes about 12 optimizer steps, more than the estimated_stepping_"
    ):
        t.fit(SizedByTheEstimate(), datamodule=Curriculum())
    assert t.global_step == 12


class Rates(Callback):
    def __init__(self):
        self.rates = set()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.rates.add((trainer.current_epoch, round(float(trainer.optimizer.learning_rate.item()), 6)))


def test_a_per_epoch_lr_scheduler_counts_the_rebuilt_loaders_epochs(tmp_path):
    # Its epochs are derived from the optimizer step and the batches an epoch: counted with the first
    # loader's 2, the rebuilt loader's 4-batch epoch 2 would step the rate half way through it.
    from audiotrain.train import StepLRScheduler

    import mlx.optimizers as optim
    from tasks import Returns

    rates = Rates()
    module = Returns(lambda m: ([optim.SGD(learning_rate=0.1)], [StepLRScheduler(0.1, 1, gamma=0.5)]))
    t = Trainer(
        max_epochs=3,
        reload_dataloaders_every_n_epochs=2,
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        enable_checkpointing=False,
        callbacks=[rates],
    )
    t.fit(module, datamodule=Curriculum())
    assert sorted(rates.rates) == [(0, 0.1), (1, 0.05), (2, 0.025)]


class ValCurriculum(Curriculum):
    """Its validation set grows with the epoch it is asked at, as its training set does."""

    def val_dataloader(self):
        epoch = self.trainer.current_epoch
        self.asked["val"].append(epoch)
        return DataLoader(Samples(16 + 8 * epoch), batch_size=8)


@pytest.mark.filterwarnings("ignore:The checkpoint resumed holds the state of callbacks")
def test_a_fit_resumed_mid_curriculum_validates_on_the_straight_runs_validation_loader(tmp_path):
    # check_val_every_n_epoch=3 validates in epochs 2 and 5: the straight run asks for the validation
    # loader at 0, 2 and 5. Resumed after epoch 3 it asked with current_epoch 4 (the training loader's
    # reload epoch) and so not again in epoch 5: that validation ran on epoch 4's loader.
    def fit(root, ckpt_path=None):
        dm = ValCurriculum()
        t = Trainer(
            max_epochs=6,
            reload_dataloaders_every_n_epochs=2,
            check_val_every_n_epoch=3,
            num_sanity_val_steps=0,
            default_root_dir=root,
            enable_progress_bar=False,
            enable_checkpointing=ckpt_path is None,
            callbacks=[] if ckpt_path else [ModelCheckpoint(dirpath=root, every_n_epochs=1, save_top_k=-1)],
        )
        t.fit(TinyClassifier(), datamodule=dm, ckpt_path=ckpt_path)
        return dm.asked["val"], float(t.callback_metrics["val_loss"])

    straight_asked, straight_loss = fit(tmp_path / "a")
    assert straight_asked == [0, 2, 5]
    resumed_asked, resumed_loss = fit(tmp_path / "b", tmp_path / "a" / "epoch=3-step=12")
    assert resumed_asked == [2, 5]
    assert resumed_loss == straight_loss


# ---------------------------------------------------------------- the counters before training starts
class Counters(Callback):
    """(hook, num_training_batches, estimated_stepping_batches) at each fit hook before on_train_start."""

    def __init__(self):
        self.seen: list[tuple[str, float, float]] = []

    def _note(self, trainer, hook):
        self.seen.append((hook, trainer.num_training_batches, trainer.estimated_stepping_batches))

    def setup(self, trainer, module, stage):
        self._note(trainer, "setup")

    def on_fit_start(self, trainer, module):
        self._note(trainer, "on_fit_start")

    def on_sanity_check_start(self, trainer, module):
        self._note(trainer, "on_sanity_check_start")

    def on_train_start(self, trainer, module):
        self._note(trainer, "on_train_start")


@pytest.mark.parametrize("limit, expected", [(None, 10), (0.6, 6)])
def test_estimated_stepping_batches_in_setup_counts_the_loader_fit_was_given(tmp_path, limit, expected):
    # Lightning 2.6.6, 5 batches an epoch, max_epochs=2: estimated_stepping_batches read in a setup hook is
    # 10 (6 with limit_train_batches=0.6), as in configure_optimizers; here it was inf, and with the
    # fraction a ValueError saying "a fraction needs a loader with a length" of a loader that has one.
    counters = Counters()
    fit(tmp_path, batches=5, callbacks=[counters], limit_train_batches=limit)
    assert counters.seen[0][0] == "setup"
    assert counters.seen[0][2] == expected


class ReadsTheEstimateInSetup(Curriculum):
    """A DataModule whose `setup` reads estimated_stepping_batches, recording what it read."""

    def setup(self, stage):
        self.read = self.trainer.estimated_stepping_batches


def test_estimated_stepping_batches_in_a_datamodules_setup_makes_the_train_loader_once(tmp_path):
    # Lightning 2.6.6, 2 batches an epoch, max_epochs=3: estimated_stepping_batches read in the datamodule's
    # and a callback's setup is 6 (Lightning makes the train loader there, once); here it was inf.
    dm, counters = ReadsTheEstimateInSetup(), Counters()
    t = Trainer(
        default_root_dir=tmp_path,
        max_epochs=3,
        enable_progress_bar=False,
        enable_checkpointing=False,
        callbacks=[counters],
    )
    t.fit(TinyClassifier(), datamodule=dm)
    assert dm.read == 6
    # (Lightning 2.6.6's callback setup, after the datamodule's read: num_training_batches 2)
    assert counters.seen[0] == ("setup", 2, 6)
    assert dm.asked["train"] == [0]
    assert t.global_step == 6


class ReadsTheCountInConfigureOptimizers(TinyClassifier):
    """Records `trainer.num_training_batches` in configure_optimizers, reading the estimate before or after."""

    estimate_first = False

    def configure_optimizers(self):
        if self.estimate_first:
            self.estimate = self.trainer.estimated_stepping_batches
        self.batches = self.trainer.num_training_batches
        if not self.estimate_first:
            self.estimate = self.trainer.estimated_stepping_batches
            self.batches_after = self.trainer.num_training_batches
        return super().configure_optimizers()


@pytest.mark.parametrize("estimate_first", [False, True])
def test_num_training_batches_in_configure_optimizers_is_inf_until_the_estimate_counts_them(
    tmp_path, estimate_first
):
    """Lightning 2.6.6 (3 batches an epoch): `trainer.num_training_batches` is inf on a new Trainer and in
    configure_optimizers, and 3 once `estimated_stepping_batches` has been read (before or after); here it
    read 0 in both orders."""
    assert Trainer().num_training_batches == float("inf")
    module = ReadsTheCountInConfigureOptimizers()
    module.estimate_first = estimate_first
    t = Trainer(
        default_root_dir=tmp_path, max_epochs=2, enable_progress_bar=False, enable_checkpointing=False
    )
    t.fit(module, make_batches(16 * 3))
    assert module.estimate == 6
    assert module.batches == (3 if estimate_first else float("inf"))
    if not estimate_first:
        assert module.batches_after == 3
    assert t.num_training_batches == 3 and t.global_step == 6


class ValidatesOnItsOwnLoader(TinyClassifier):
    def val_dataloader(self):
        return make_batches(32, seed=1)


def test_estimated_stepping_batches_in_setup_counts_the_loader_passed_beside_the_modules_val_loader(tmp_path):
    # Lightning 2.6.6, fit(model, train_loader) of 5 batches with the module's own val_dataloader(),
    # max_epochs=2: a callback's setup reads estimated_stepping_batches 10; here it was inf.
    counters = Counters()
    t = Trainer(
        default_root_dir=tmp_path,
        max_epochs=2,
        enable_progress_bar=False,
        enable_checkpointing=False,
        callbacks=[counters],
    )
    t.fit(ValidatesOnItsOwnLoader(), make_batches(16 * 5))
    assert counters.seen[0] == ("setup", float("inf"), 10)  # (Lightning 2.6.6's: inf, 10)


class EndsEpochZeroAtBatchTwo(TinyClassifier):
    def on_train_batch_start(self, batch, batch_idx):
        if self.trainer.current_epoch == 0 and batch_idx == 2:
            return -1


class LastBatchAtEpochEnd(Callback):
    def __init__(self):
        self.seen: list[tuple[int, int, bool]] = []

    def on_train_epoch_end(self, trainer, module):
        self.seen.append((trainer.current_epoch, trainer.global_step, trainer.is_last_batch))


def test_is_last_batch_is_true_at_the_end_of_an_epoch_that_on_train_batch_start_ended(tmp_path):
    # Lightning 2.6.6, 5 batches an epoch, on_train_batch_start returning -1 at epoch 0's batch 2:
    # on_train_epoch_end sees is_last_batch True (after 2 steps), as at a full epoch's end (here: False).
    seen = LastBatchAtEpochEnd()
    t = Trainer(
        default_root_dir=tmp_path,
        max_epochs=2,
        enable_progress_bar=False,
        enable_checkpointing=False,
        callbacks=[seen],
    )
    t.fit(EndsEpochZeroAtBatchTwo(), make_batches(16 * 5))
    assert seen.seen == [(0, 2, True), (1, 7, True)]


class ValidatesByLogging(TinyClassifier):
    """A Lightning-style module with its own validation_step."""

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", mx.mean(nn.losses.cross_entropy(self(x), y)))


def test_a_validation_step_without_a_val_loader_is_warned_of_as_lightning_does(tmp_path):
    # Lightning 2.6.6, fit(model, train_dataloaders=...) of a module with a validation_step and no val loader:
    # PossibleUserWarning "You defined a `validation_step` but have no `val_dataloader`. Skipping val loop."
    t = Trainer(
        max_epochs=1, default_root_dir=tmp_path, enable_progress_bar=False, enable_checkpointing=False
    )
    with pytest.warns(
        PossibleUserWarning, match=r"`validation_step` but have no `val_dataloader`.*Skipping val"
    ):
        t.fit(ValidatesByLogging(), make_batches())
    assert "val_loss" not in t.callback_metrics
    # Given a val loader, or with the default validation_step (compute_loss's), nothing is said.
    for model, val in ((ValidatesByLogging(), make_batches(32)), (TinyClassifier(), None)):
        t = Trainer(
            max_epochs=1, default_root_dir=tmp_path, enable_progress_bar=False, enable_checkpointing=False
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t.fit(model, make_batches(), val)
        assert not [w for w in caught if "val_dataloader" in str(w.message)]


def test_lr_find_and_a_fit_with_validation_turned_off_do_not_warn_of_a_missing_val_loader(tmp_path):
    # lr_find's sweep is a fit of its own Trainer without validation: it warned "no `val_dataloader`" of a
    # call that passed one. limit_val_batches=0 is the user's own choice to skip validation.
    from audiotrain import Tuner

    settings = dict(default_root_dir=tmp_path, enable_progress_bar=False, enable_checkpointing=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Tuner(Trainer(max_epochs=1, **settings)).lr_find(
            ValidatesByLogging(), make_batches(), make_batches(32), num_training=4
        )
        Trainer(max_epochs=1, limit_val_batches=0, **settings).fit(ValidatesByLogging(), make_batches())
    assert not [w for w in caught if "val_dataloader" in str(w.message)]


class Hooks(Callback):
    """The fit-level hooks called, by name."""

    def __init__(self):
        self.called: list[str] = []

    def __getattribute__(self, name):
        names = ("on_fit_start", "on_fit_end", "on_train_start", "on_train_end", "on_sanity_check_start")
        if name in names + ("on_train_epoch_start", "on_validation_start"):
            return lambda trainer, module, *args: self.called.append(name)
        return super().__getattribute__(name)


class StopsAtFitStart(Callback):
    def on_fit_start(self, trainer, module):
        trainer.should_stop = True


@pytest.mark.filterwarnings("ignore:Trainer.fit. nothing to train")
@pytest.mark.parametrize("nothing", ["a finished fit again", "limit_train_batches=0", "should_stop at start"])
def test_a_fit_with_nothing_to_train_calls_no_train_start_or_end_and_saves_nothing_as_lightning(
    tmp_path, nothing
):
    # Lightning 2.6.6's FitLoop.skip: fit again after a finished one, with limit_train_batches=0, or with
    # trainer.should_stop set in on_fit_start, a callback hears setup, on_fit_start, the sanity check
    # (on_sanity_check_start, on_validation_start, ...) and on_fit_end, no on_train_start/on_train_end, and no
    # checkpoint is written. Here on_train_start and on_train_end ran around the empty loop, and
    # ModelCheckpoint's on_train_end saved a `last` where nothing had trained.
    hooks = Hooks()
    kw = {"limit_train_batches": 0} if nothing == "limit_train_batches=0" else {}
    callbacks = [hooks] + ([StopsAtFitStart()] if nothing == "should_stop at start" else [])
    trainer = Trainer(
        max_epochs=2, default_root_dir=tmp_path, enable_progress_bar=False, callbacks=callbacks, **kw
    )
    model = TinyClassifier()
    train, val = make_batches(32), make_batches(16, seed=1)
    if nothing == "a finished fit again":
        trainer.fit(model, train, val)
        hooks.called.clear()
    saved = sorted((tmp_path / "checkpoints").rglob("*"))
    stamps = [p.stat().st_mtime_ns for p in saved]
    trainer.fit(model, train, val)
    assert hooks.called == ["on_fit_start", "on_sanity_check_start", "on_validation_start", "on_fit_end"]
    assert sorted((tmp_path / "checkpoints").rglob("*")) == saved
    assert [p.stat().st_mtime_ns for p in saved] == stamps


class StepWithoutBatchIdx(TinyClassifier):
    """Lightning 2's `training_step(self, batch)`: a step that leaves `batch_idx` out."""

    def training_step(self, batch):
        return self.compute_loss(batch)


class StepsAt(Callback):
    def __init__(self):
        self.steps = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.steps.append(trainer.global_step)


@pytest.mark.parametrize("compile", [True, False])
def test_a_training_step_without_batch_idx_trains_accumulates_and_scores_validation(tmp_path, compile):
    """It was called with (batch, batch_idx) anyway: "training_step() takes 2 positional arguments but 3
    were given". Lightning 2.6.6 gives global_step 0, 1, 1, 2 after the 4 batches of an epoch under
    accumulate_grad_batches=2; validate and test without steps of their own score it on their batches."""
    steps = StepsAt()
    t = Trainer(
        default_root_dir=tmp_path,
        max_epochs=1,
        accumulate_grad_batches=2,
        enable_progress_bar=False,
        enable_checkpointing=False,
        num_sanity_val_steps=1,
        compile=compile,
        callbacks=[steps],
    )
    model = StepWithoutBatchIdx()
    t.fit(model, make_batches(64), make_batches(32, seed=1))
    assert steps.steps == [0, 1, 1, 2]
    [validated] = t.validate(model, make_batches(32, seed=1))
    [tested] = t.test(model, make_batches(32, seed=2))
    assert np.isfinite(validated["val_loss"]) and np.isfinite(tested["test_loss"])


class StepOfLightning(TinyClassifier):
    """Lightning 2's `training_step(self, batch, batch_idx)`, with no validation_step or test_step."""

    def training_step(self, batch, batch_idx):
        return self.compute_loss(batch)


@pytest.mark.parametrize("module", [StepOfLightning, StepWithoutBatchIdx])
def test_the_default_evaluation_step_scores_several_loaders_with_a_training_step_taking_no_dataloader_idx(
    tmp_path, module
):
    """The default validation_step / test_step passed the loader's index on to the training step: with
    several loaders the sanity check failed at its first batch, "StepOfLightning.training_step() takes 3
    positional arguments but 4 were given", where one loader worked."""
    sets = [DataLoader(list(zip(*make_data(16, seed=s), strict=True)), batch_size=8) for s in (1, 2)]
    t = Trainer(
        default_root_dir=tmp_path,
        max_epochs=1,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        logger=False,
    )
    model = module()
    t.fit(model, make_batches(32), sets)
    assert {"val_loss/dataloader_idx_0", "val_loss/dataloader_idx_1"} <= set(t.callback_metrics)
    tested = t.test(model, sets, verbose=False)
    assert [f"test_loss/dataloader_idx_{i}" in each for i, each in enumerate(tested)] == [True, True]


def _a_stream_of(n: int):
    """A loader without a length: a generator of n batches each time it is iterated."""

    class Stream:
        def __iter__(self):
            yield from make_batches(16 * n)

    return Stream()


def test_limit_batches_of_1_0_reads_a_loader_without_a_length_to_its_end_as_the_default_does(tmp_path):
    """`limit_train_batches=1.0`, Lightning's default written out (a config file's), was refused for a
    loader without a length: "a fraction needs a loader with a length". Lightning 2.6.6 trains all 6
    batches of such a stream (num_training_batches inf, global_step 6) and validates all of its 3."""
    t = Trainer(
        default_root_dir=tmp_path,
        max_epochs=1,
        limit_train_batches=1.0,
        limit_val_batches=1.0,
        enable_progress_bar=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
    )
    t.fit(TinyClassifier(), _a_stream_of(6), _a_stream_of(3))
    assert (t.num_training_batches, t.global_step, t.num_val_batches) == (float("inf"), 6, float("inf"))
    assert (t.limit_train_batches, t.limit_val_batches) == (1.0, 1.0)
    with pytest.raises(ValueError, match=r"limit_train_batches=0.5\): .* or 1.0 for all of them"):
        Trainer(
            default_root_dir=tmp_path, max_epochs=1, limit_train_batches=0.5, enable_progress_bar=False
        ).fit(TinyClassifier(), _a_stream_of(6))


class LastBatchAndStep(Callback):
    def __init__(self):
        self.seen: list[tuple[int, bool, int]] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.seen.append((batch_idx, trainer.is_last_batch, trainer.global_step))


class Unsized:
    """A loader without a length (a generator's batches each epoch) nor a position of its own."""

    def __iter__(self):
        yield from make_batches(48)


@pytest.mark.parametrize("accumulate", [1, 2])
def test_the_last_batch_of_a_loader_without_a_length_is_known_as_lightnings(tmp_path, accumulate):
    # Lightning 2.6.6 (its fetcher reads one batch ahead), 3 batches of an IterableDataset, 2 epochs:
    # is_last_batch is True at batch 2, whose step closes the accumulation window there (global_step 2 at its
    # on_train_batch_end with accumulate_grad_batches=2). Here it was False, and the window closed after it.
    seen = LastBatchAndStep()
    t = Trainer(
        default_root_dir=tmp_path,
        max_epochs=2,
        accumulate_grad_batches=accumulate,
        enable_progress_bar=False,
        enable_checkpointing=False,
        logger=False,
        callbacks=[seen],
    )
    t.fit(TinyClassifier(), Unsized())
    steps = [1, 2, 3, 4, 5, 6] if accumulate == 1 else [0, 1, 2, 2, 3, 4]
    assert seen.seen == [(i % 3, i % 3 == 2, steps[i]) for i in range(6)]
    assert t.global_step == steps[-1]


class NoneOnEvenCalls:
    """A collate_fn that leaves out every other batch (its even calls) by returning None."""

    def __init__(self):
        self.calls = 0

    def __call__(self, samples):
        from audiotrain.data import default_collate

        self.calls += 1
        return None if self.calls % 2 == 1 else default_collate(samples)


class BatchEvents(Callback):
    def __init__(self):
        self.seen: list[tuple] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.seen.append(("start", batch_idx, trainer.global_step))

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.seen.append(("end", batch_idx, outputs is None, batch is None, trainer.global_step))


def test_a_batch_the_training_loader_yields_as_none_is_skipped_with_lightnings_warning(tmp_path):
    # Lightning 2.6.6, 4 batches of one sample and a collate_fn returning None for batches 0 and 2, 2 epochs:
    # "train_dataloader yielded None. If this was on purpose, ignore this warning..." once; no
    # on_train_batch_start and no step for those batches, on_train_batch_end with None outputs and batch;
    # global_step 4. Here the None reached the batch transfer, refused as on_before_batch_transfer's None.
    events = BatchEvents()
    t = Trainer(
        default_root_dir=tmp_path,
        max_epochs=2,
        enable_progress_bar=False,
        enable_checkpointing=False,
        logger=False,
        callbacks=[events],
    )
    x, y = make_data(4)
    with pytest.warns(UserWarning, match=r"^train_dataloader yielded None\. If this was on purpose") as said:
        t.fit(TinyClassifier(), DataLoader(list(zip(x, y)), batch_size=1, collate_fn=NoneOnEvenCalls()))
    assert len([w for w in said if "yielded None" in str(w.message)]) == 1
    epoch = [("end", 0, True, True, 0), ("start", 1, 0), ("end", 1, False, False, 1)]
    epoch += [("end", 2, True, True, 1), ("start", 3, 1), ("end", 3, False, False, 2)]
    shift = [(*e[:-1], e[-1] + 2) for e in epoch]
    assert events.seen == epoch + shift and t.global_step == 4


def test_a_none_batch_is_left_out_of_its_accumulation_window(tmp_path):
    """Batches 1 and 3 of 4 (None at 0 and 2), accumulate_grad_batches=2: the window's update is the mean of
    the gradients of the two batches it trained on, as the same fit on those two batches alone. (Lightning
    2.6.6 windows by batch index, so each real batch steps alone there, with half its gradient: loss / 2.)"""
    x, y = make_data(4)

    def fit(loader):
        module = TinyClassifier()
        module.load_weights(list(start.items()))
        Trainer(
            default_root_dir=tmp_path,
            max_epochs=1,
            accumulate_grad_batches=2,
            enable_progress_bar=False,
            enable_checkpointing=False,
            logger=False,
        ).fit(module, loader)
        return weights(module)

    start = {k: mx.array(v) for k, v in weights(TinyClassifier()).items()}
    with pytest.warns(UserWarning, match="yielded None"):
        skipped = fit(DataLoader(list(zip(x, y)), batch_size=1, collate_fn=NoneOnEvenCalls()))
    alone = fit(DataLoader(list(zip(x[1::2], y[1::2])), batch_size=1))
    for name, value in alone.items():
        np.testing.assert_array_equal(skipped[name], value, err_msg=name)


class Positioned:
    """A loader without a length that keeps its own position (`state_dict` / `load_state_dict`), as a
    torchdata StatefulDataLoader over a stream does: a resume continues at the saved batch."""

    def __init__(self):
        self.batches = make_batches(48)
        self.position = 0

    def __iter__(self):
        while self.position < len(self.batches):
            self.position += 1
            yield self.batches[self.position - 1]
        self.position = 0

    def state_dict(self):
        return {"position": self.position}

    def load_state_dict(self, state):
        self.position = state["position"]


class LastBatchAndPosition(Callback):
    def __init__(self):
        self.seen: list[tuple[int, bool, int]] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.seen.append((batch_idx, trainer.is_last_batch, trainer.train_dataloader.position))


def test_the_last_batch_of_a_loader_without_a_length_that_keeps_its_position_is_known_as_lightnings(tmp_path):
    # Lightning 2.6.6, the same 3 batches an epoch from an unsized iterable with state_dict/load_state_dict:
    # is_last_batch is True at batch 2 (its fetcher reads one batch ahead). Here it was False: such a loader
    # was not read ahead, as its saved position would then be one batch past the step.
    seen = LastBatchAndPosition()
    t = Trainer(
        default_root_dir=tmp_path,
        max_epochs=2,
        enable_progress_bar=False,
        enable_checkpointing=False,
        logger=False,
        callbacks=[seen],
    )
    t.fit(TinyClassifier(), Positioned())
    # (read ahead: at batch 0 the loader is at batch 2, at the last batch at its end)
    assert seen.seen == [(0, False, 2), (1, False, 3), (2, True, 0)] * 2


def test_a_loader_read_ahead_saves_the_position_of_the_batch_it_trains_and_resumes_exactly(tmp_path):
    """A checkpoint taken at batch 0 of epoch 1 (the loader already one batch further, read ahead) holds the
    position after batch 0, and the run resumed from it trains batches 1 and 2 of that epoch, ending with the
    weights of the run never stopped. (Lightning 2.6.6 saves the position read ahead, {'pos': 3} at batch 1
    of 5 in a checkpoint saved in on_train_batch_end, and so skips a batch when resumed: not copied.)"""
    from audiotrain.train.callbacks import LambdaCallback

    from exactness import assert_same_numbers
    from tasks import quiet_trainer

    def fit(folder, callbacks=(), ckpt_path=None):
        mx.random.seed(0)
        module, loader = TinyClassifier(), Positioned()
        trained = []
        record = LambdaCallback(
            on_train_batch_start=lambda t, m, batch, i: trained.append(np.array(batch[0]))
        )
        trainer = quiet_trainer(tmp_path / folder, max_epochs=2, callbacks=[record, *callbacks])
        trainer.fit(module, loader, ckpt_path=ckpt_path)
        return trainer, module, trained

    def save_at_epoch_1_batch_0(trainer, module, outputs, batch, batch_idx):
        if (trainer.current_epoch, batch_idx) == (1, 0):
            trainer.save_checkpoint(tmp_path / "mid.ckpt")

    _, straight, straight_batches = fit(
        "straight", [LambdaCallback(on_train_batch_end=save_at_epoch_1_batch_0)]
    )
    state = json.loads((tmp_path / "mid.ckpt" / "trainer_state.json").read_text())
    assert state["data_loader"] == {"position": 1}
    resumed_trainer, resumed, resumed_batches = fit("resumed", ckpt_path=tmp_path / "mid.ckpt")
    assert resumed_trainer.global_step == 6 and len(resumed_batches) == 2
    for got, expected in zip(resumed_batches, straight_batches[4:]):
        np.testing.assert_array_equal(got, expected)
    for name, value in weights(straight).items():
        assert_same_numbers(weights(resumed)[name], value, err_msg=name)


class StopsWhileReadAhead(Positioned):
    """`Positioned`, whose batch 2 of epoch 1 is read (ahead, in batch 1's turn) as a Ctrl-C reaches the
    process and kills the worker loading it: the DataLoader's error for a worker a stop signal ended."""

    stopped = False

    def __init__(self):
        super().__init__()
        self.epoch_reads = 0

    def __iter__(self):
        for batch in super().__iter__():
            if self.epoch_reads == 1 and self.position == 3 and not StopsWhileReadAhead.stopped:
                import os
                import signal

                from audiotrain.data.workers import DataLoaderError

                StopsWhileReadAhead.stopped = True
                os.kill(os.getpid(), signal.SIGINT)
                raise DataLoaderError("worker 0 died", stage="worker", exit_code=-signal.SIGINT)
            yield batch
        self.epoch_reads += 1


def test_a_ctrl_c_while_a_batch_is_read_ahead_resumes_at_the_batch_not_yet_trained(tmp_path):
    """A Ctrl-C that kills the worker reading batch 2 of epoch 1 ahead, before batch 1 is trained: the
    checkpoint holds the position after batch 0 with the counters after batch 0, so the resumed run trains
    batches 1 and 2 and ends with the weights of the run never stopped (the position taken for batch 1, one
    past the counters, skipped batch 1)."""
    from exactness import assert_same_numbers
    from tasks import quiet_trainer

    def fit(folder, loader, ckpt_path=None):
        mx.random.seed(0)
        module = TinyClassifier()
        trainer = quiet_trainer(tmp_path / folder, max_epochs=2, enable_checkpointing=True)
        trainer.fit(module, loader, ckpt_path=ckpt_path)
        return trainer, module

    _, straight = fit("straight", Positioned())
    stopped, _ = fit("pieces", StopsWhileReadAhead())
    assert stopped.interrupted and stopped.global_step == 4
    state = json.loads((stopped.interrupted_checkpoint / "trainer_state.json").read_text())
    assert state["data_loader"] == {"position": 1}
    resumed_trainer, resumed = fit("pieces", Positioned(), ckpt_path=stopped.interrupted_checkpoint)
    assert resumed_trainer.global_step == 6
    for name, value in weights(straight).items():
        assert_same_numbers(weights(resumed)[name], value, err_msg=name)
