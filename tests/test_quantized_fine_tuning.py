"""Fine-tuning a quantized model (nn.quantize, QLoRA-like), as an MLX user does it."""

import audiotrain  # noqa: F401  (first: loads the fast BLAS)
from audiotrain import CheckpointError, Trainer
from audiotrain.train.callbacks import ModelSummary

import mlx.core as mx
import mlx.nn as nn
import pytest
from mlx.utils import tree_flatten
from tasks import TinyClassifier, make_batches


def quantized_classifier():
    """TinyClassifier whose 64-wide fc2 is a 4-bit QuantizedLinear (fc1, 8 wide, cannot be quantized)."""
    model = TinyClassifier(hidden=64)
    nn.quantize(model, group_size=32, bits=4, class_predicate=lambda path, _: path == "fc2")
    assert isinstance(model.fc2, nn.QuantizedLinear)
    return model


class KeepsPositions(TinyClassifier):
    """A torch port's position index and mask as plain attributes (torch: buffers; MLX: parameters)."""

    def __init__(self):
        super().__init__()
        self.pos = mx.arange(8)
        self.fc2.mask = mx.array([True, True, False])

    def __call__(self, x):
        return mx.where(self.fc2.mask, super().__call__(x + self.pos), -1e9)


def test_a_trainable_index_or_mask_is_told_how_to_keep_it_out_of_training_not_about_quantizing():
    # Refused since the quantized-weight check, but with advice for quantized layers alone ("freeze each
    # quantized layer's packed weight ... LoRA adapters") for a model that quantizes nothing; before that
    # check, MLX's bare "[eval] Attempting to eval an array without a primitive" inside the step.
    trainer = Trainer(max_epochs=1, enable_progress_bar=False, enable_checkpointing=False, compile=False)
    with pytest.raises(ValueError) as refused:
        trainer.fit(KeepsPositions(), make_batches())
    said = str(refused.value)
    assert said.startswith("KeepsPositions: fc2.mask (bool), pos (int32) are trainable"), said
    assert "self.register_buffer('mask'" not in said and "quantized" not in said, said
    assert "self.fc2.freeze(keys='mask', recurse=False)" in said, said
    model = KeepsPositions()
    model.fc2.freeze(keys="mask", recurse=False)
    with pytest.raises(ValueError, match=r"self\.register_buffer\('pos', value\)"):
        trainer.fit(model, make_batches())


@pytest.mark.parametrize("compile_", [True, False])
def test_an_unfrozen_packed_quantized_weight_is_refused_by_name_at_fit_start(compile_):
    # unfreeze() (Lightning's: every parameter) made fc2's packed uint32 weight trainable; the step's backward
    # pass failed inside MLX ("[QuantizedMatmul::vjp] no gradient wrt the quantized weights").
    model = quantized_classifier()
    model.unfreeze()
    trainer = Trainer(max_epochs=1, enable_progress_bar=False, enable_checkpointing=False, compile=compile_)
    with pytest.raises(ValueError, match=r"fc2\.weight \(uint32\).*quantized.*freeze\(keys='weight'"):
        trainer.fit(model, make_batches())


def test_a_packed_weight_unfrozen_at_an_epoch_start_is_refused_by_name():
    # A fine-tuning schedule unfreezing the quantized layer at epoch 1 (BackboneFinetuning's way).
    class UnfreezesAtEpoch1(TinyClassifier):
        def on_train_epoch_start(self, epoch):
            if epoch == 1:
                self.fc2.unfreeze()

    model = UnfreezesAtEpoch1(hidden=64)
    nn.quantize(model, group_size=32, bits=4, class_predicate=lambda path, _: path == "fc2")
    trainer = Trainer(max_epochs=2, enable_progress_bar=False, enable_checkpointing=False)
    with pytest.raises(ValueError, match=r"fc2\.weight \(uint32\)"):
        trainer.fit(model, make_batches())


def test_a_quantized_model_with_its_packed_weights_frozen_trains_the_rest():
    model = quantized_classifier()
    model.fc2.freeze(keys="weight", recurse=False)
    trainer = Trainer(max_epochs=1, enable_progress_bar=False, enable_checkpointing=False)
    trainer.fit(model, make_batches())
    assert "train_loss" in trainer.callback_metrics


def test_the_model_summary_counts_a_quantized_layers_weights_not_the_words_that_pack_them():
    # 4-bit fc2 (3 x 64 weights) packs 8 weights in each uint32: the summary counted 24 "params" for its 192
    # weights, so a LoRA adapter looked large beside its frozen base.
    model = quantized_classifier()
    model.freeze()
    summary = ModelSummary().summary(model)
    fc1, fc2_weights, fc2_bias = 8 * 64 + 64, 3 * 64, 3
    fc2_scales_and_biases = model.fc2.scales.size + model.fc2.biases.size  # (parameters MLX can train)
    assert summary.total_params == fc1 + fc2_weights + fc2_bias + fc2_scales_and_biases
    assert {row.name: row.params for row in summary.rows}[
        "fc2"
    ] == fc2_weights + fc2_bias + fc2_scales_and_biases
    assert summary.trainable_params == 0


def fitted_last_checkpoint(model, root):
    trainer = Trainer(
        max_epochs=1, enable_progress_bar=False, enable_model_summary=False, default_root_dir=root
    )
    trainer.fit(model, make_batches())
    return trainer.checkpoint_callback.last_model_path


def test_a_quantized_checkpoint_loaded_into_a_model_not_quantized_says_to_quantize_it(tmp_path):
    # The error listed mis-shaped uint32 weights and unexpected scales, with no word of quantization.
    model = quantized_classifier()
    model.fc2.freeze(keys="weight", recurse=False)
    last = fitted_last_checkpoint(model, tmp_path)
    with pytest.raises(CheckpointError, match=r"quantized \(nn\.quantize\).*fc2.*quantize this model"):
        TinyClassifier.load_from_checkpoint(last, hidden=64)


def test_a_checkpoint_not_quantized_loaded_into_a_quantized_model_says_so(tmp_path):
    last = fitted_last_checkpoint(TinyClassifier(hidden=64), tmp_path)
    with pytest.raises(CheckpointError, match=r"This model is quantized.*fc2.*before nn\.quantize"):
        Trainer(
            max_epochs=2, enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path
        ).fit(quantized_classifier(), make_batches(), ckpt_path=last)


def test_an_adapter_file_given_as_a_checkpoint_says_how_mlx_loads_part_of_the_weights(tmp_path):
    # mlx-lm's habit: the trained adapters alone, mx.save_safetensors(path, dict(tree_flatten(trainable))).
    # The error said to load it with safetensors.torch.load_file (torch) and strictly, which an adapter file
    # (no base weights) fails.
    model = quantized_classifier()
    adapters = str(tmp_path / "adapters.safetensors")
    mx.save_safetensors(adapters, dict(tree_flatten(model.trainable_parameters())))
    trainer = Trainer(
        max_epochs=1, enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path
    )
    with pytest.raises(
        CheckpointError, match=r"load_state_dict\(mx\.load\(.*adapters\.safetensors.*strict=False"
    ):
        trainer.fit(model, make_batches(), ckpt_path=adapters)


def test_the_freeze_check_of_each_epoch_start_reads_the_trainable_parameters_once(monkeypatch):
    # names_to_train (fit start and every epoch start) flattened trainable_parameters() twice since the
    # integer check (c66c1882): 2x the check's time on a model of many small parameters (perfcheck, s72).
    from audiotrain.train.step import names_to_train

    model = quantized_classifier()
    reads = []
    read = model.trainable_parameters
    monkeypatch.setattr(model, "trainable_parameters", lambda: reads.append(1) or read())
    model.fc2.freeze(keys="weight", recurse=False)
    assert names_to_train(model) == {name for name, _ in tree_flatten(read())}
    assert len(reads) == 1
    model.unfreeze()
    with pytest.raises(ValueError, match=r"fc2\.weight \(uint32\)"):
        names_to_train(model)
    assert len(reads) == 2


def test_a_quantized_checkpoint_of_a_narrower_model_does_not_blame_bits_or_group_size(tmp_path):
    """A 4-bit, group-32 run's checkpoint (hidden 64) resumed into the same quantization of a wider model
    (hidden 128): the refusal said "Both are quantized (nn.quantize), with another bits (e.g. fc2) and
    group_size (e.g. fc2): quantize this model with the run's group_size and bits", which were the run's;
    the width differs (fc1's shapes say so)."""
    model = quantized_classifier()
    model.fc2.freeze(keys="weight", recurse=False)
    last = fitted_last_checkpoint(model, tmp_path)
    wider = TinyClassifier(hidden=128)
    nn.quantize(wider, group_size=32, bits=4, class_predicate=lambda path, _: path == "fc2")
    wider.fc2.freeze(keys="weight", recurse=False)
    trainer = Trainer(
        max_epochs=2, enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path
    )
    with pytest.raises(CheckpointError) as refused:
        trainer.fit(wider, make_batches(), ckpt_path=last)
    said = str(refused.value)
    assert "fc1.weight" in said and "another bits" not in said and "group_size (e.g." not in said, said


@pytest.mark.parametrize(("bits", "group_size", "named"), [(8, 32, "bits"), (4, 64, "group_size")])
def test_a_quantized_checkpoint_loaded_into_a_model_quantized_otherwise_names_the_setting(
    tmp_path, bits, group_size, named
):
    # Resuming a 4-bit, group-32 run with another bits or group_size listed mis-shaped weights or scales
    # ("fc2.weight: checkpoint (3, 8) vs model (3, 16)") with no word of which setting differed.
    model = quantized_classifier()
    model.fc2.freeze(keys="weight", recurse=False)
    last = fitted_last_checkpoint(model, tmp_path)
    other = TinyClassifier(hidden=64)
    nn.quantize(other, group_size=group_size, bits=bits, class_predicate=lambda path, _: path == "fc2")
    other.fc2.freeze(keys="weight", recurse=False)
    trainer = Trainer(
        max_epochs=2, enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path
    )
    with pytest.raises(CheckpointError) as refused:
        trainer.fit(other, make_batches(), ckpt_path=last)
    said = str(refused.value)
    assert f"Both are quantized (nn.quantize), with another {named} (e.g. fc2)" in said, said
    assert ("group_size (e.g." in said) == (named == "group_size"), said
