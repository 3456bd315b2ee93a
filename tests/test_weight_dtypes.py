"""A model of float16 weights trained as it is (precision '32'): MLX has no loss scaling, and an optimizer's
eps of 1e-8 is 0 in float16."""

import warnings

import audiotrain  # noqa: F401  (before mlx)
from audiotrain import OptimizerConfig

import mlx.core as mx
import mlx.optimizers as optim
import pytest
from mlx.utils import tree_flatten
from tasks import TinyClassifier, make_batches, quiet_trainer


def _float16(module):
    module.set_dtype(mx.float16)
    return module


def test_float16_weights_under_adamw_are_refused_before_a_step_naming_the_weights_eps_and_what_to_use(
    tmp_path,
):
    # Before: the first AdamW update divided by sqrt(v) + eps = 0 and made every weight inf; fit ended 11
    # steps later with "non-finite loss or gradients ... the weights are still finite. Lower the learning
    # rate", and the checkpoint of "the last good state" held the infinite weights.
    module = _float16(TinyClassifier())
    trainer = quiet_trainer(tmp_path, max_epochs=2)
    with pytest.raises(ValueError) as raised:
        trainer.fit(module, make_batches(48))
    message = str(raised.value)
    for part in ("float16", "'fc1.weight'", "AdamW", "eps=1e-08", "precision='bf16-true'", "bf16-mixed"):
        assert part in message, part
    assert trainer.global_step == 0
    assert all(bool(mx.all(mx.isfinite(v))) for _, v in tree_flatten(module.parameters()))


class Float16Sgd(TinyClassifier):
    def configure_optimizers(self):
        return OptimizerConfig(optimizer=optim.SGD(learning_rate=1e-2))


@pytest.mark.parametrize(
    "make", [lambda: Float16Sgd(), lambda: TinyClassifier()], ids=["sgd", "adamw-bf16-true"]
)
def test_float16_weights_train_with_an_optimizer_without_eps_or_under_bf16_true(tmp_path, make):
    module = _float16(make())
    precision = "32" if isinstance(module, Float16Sgd) else "bf16-true"
    trainer = quiet_trainer(tmp_path, max_epochs=1, precision=precision)
    trainer.fit(module, make_batches(48))
    assert trainer.global_step == 3
    assert all(bool(mx.all(mx.isfinite(v))) for _, v in tree_flatten(module.parameters()))


class Float16AdaDelta(TinyClassifier):
    eps = 1e-6  # AdaDelta's default

    def configure_optimizers(self):
        return OptimizerConfig(optimizer=optim.AdaDelta(learning_rate=1.0, eps=self.eps))


def test_float16_weights_train_with_adadelta_whose_eps_is_inside_its_roots(tmp_path):
    # Before: refused as AdamW's ("divides by sqrt(v) + eps, so the first step would make the weights inf"),
    # though AdaDelta's sqrt(u + eps) / sqrt(v + eps) keeps its default eps of 1e-6, a float16 subnormal, and
    # trained float16 weights to finite values before the check came.
    module = _float16(Float16AdaDelta())
    trainer = quiet_trainer(tmp_path, max_epochs=2)
    trainer.fit(module, make_batches(48))
    assert trainer.global_step == 6 and module.fc1.weight.dtype == mx.float16
    assert all(bool(mx.all(mx.isfinite(v))) for _, v in tree_flatten(module.parameters()))
    # An eps that float16 rounds to 0 makes 0 / 0 of a zero gradient: still refused.
    small = _float16(Float16AdaDelta())
    small.eps = 1e-8
    with pytest.raises(ValueError, match="AdaDelta's eps=1e-08"):
        quiet_trainer(tmp_path / "small", max_epochs=1).fit(small, make_batches(48))


def test_bfloat16_weights_under_bf16_mixed_are_warned_that_they_become_float32(tmp_path):
    # Before: the first update made them float32 (bf16-mixed's float32 master weights), twice their memory,
    # without a word.
    module = TinyClassifier()
    module.set_dtype(mx.bfloat16)
    trainer = quiet_trainer(tmp_path / "bf16", max_epochs=1, precision="bf16-mixed")
    with pytest.warns(UserWarning, match=r"are bfloat16 \('fc1.weight'.*makes them float32.*'bf16-true'"):
        trainer.fit(module, make_batches(48))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_trainer(tmp_path / "f32", max_epochs=1, precision="bf16-mixed").fit(
            TinyClassifier(), make_batches(48)
        )
    assert not [w for w in caught if "master weights" in str(w.message)]
