"""`Trainer(enable_model_summary=True)` and the `ModelSummary` callback: Lightning's table of the module's
submodules and parameter counts, printed once as `fit` starts."""

import audiotrain  # noqa: F401  (before mlx)
from audiotrain import OptimizerConfig, TrainModule
from audiotrain.train import ModelSummary

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import pytest
from tasks import TinyClassifier, make_batches, quiet_trainer


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 6)  # 4*6 + 6 = 30
        self.blocks = [nn.Linear(6, 6), nn.Linear(6, 6)]  # 42 each


class Nested(TrainModule):
    """A task holding a model two levels deep, a frozen head and a parameter of its own."""

    def __init__(self):
        super().__init__()
        self.encoder = Encoder()  # 30 + 2 * 42 = 114
        self.head = nn.Linear(6, 3)  # 21, frozen below
        self.head.freeze()
        self.temperature = mx.ones(2)  # in no submodule: Lightning's "other params" row

    def compute_loss(self, batch):
        x, y = batch
        h = self.encoder.proj(x[:, :4])
        for block in self.encoder.blocks:
            h = block(h)
        logits = self.head(h) * self.temperature[0]
        return mx.mean(nn.losses.cross_entropy(logits, y)), {}

    def configure_optimizers(self):
        return OptimizerConfig(optim.SGD(learning_rate=0.1))


def table_rows(text: str) -> list[list[str]]:
    """The rows between the two rules, as their stripped cells."""
    lines = text.strip("\n").splitlines()
    rules = [i for i, line in enumerate(lines) if line and set(line) == {"-"}]
    return [[cell.strip() for cell in line.split("|")] for line in lines[rules[0] + 1 : rules[1]]]


def totals(text: str) -> dict[str, str]:
    lines = text.strip("\n").splitlines()
    last_rule = max(i for i, line in enumerate(lines) if line and set(line) == {"-"})
    return {line[10:]: line[:10].strip() for line in lines[last_rule + 1 :]}


def fit_printing(tmp_path, capsys, module=None, **trainer_flags):
    trainer = quiet_trainer(tmp_path, max_epochs=1, **trainer_flags)
    trainer.fit(module or Nested(), make_batches(32))
    return capsys.readouterr().err


def test_the_default_trainer_prints_lightnings_table_once_as_fit_starts(tmp_path, capsys):
    out = fit_printing(tmp_path, capsys)  # (on stderr, with the Trainer's other lines about the run)
    assert out.count("Total params") == 1
    header = next(line for line in out.splitlines() if "Name" in line)
    assert [cell.strip() for cell in header.split("|")] == ["", "Name", "Type", "Params", "Mode"]
    assert table_rows(out) == [
        ["0", "encoder", "Encoder", "114", "train"],
        ["1", "head", "Linear", "21", "train"],
        ["", "other params", "n/a", "2", "n/a"],
    ]
    frozen = 21
    total = 114 + 21 + 2
    assert totals(out) == {
        "Trainable params": str(total - frozen),
        "Non-trainable params": str(frozen),
        "Total params": str(total),
        "Total estimated model params size (MB)": f"{total * 4 / 1e6:.3f}",  # float32: 4 bytes each
        "Modules in train mode": "5",  # encoder, proj, blocks.0, blocks.1, head (the root not counted)
        "Modules in eval mode": "0",
    }


class WithAMegabyte(TinyClassifier):
    """TinyClassifier (no array of its own, outside its layers) and an unused layer of 1,000,000 bytes."""

    def __init__(self):
        super().__init__()
        self.wide = nn.Linear(1000, 250, bias=False)  # 250,000 float32


def test_a_module_without_arrays_of_its_own_has_no_other_params_row_and_its_size_is_in_mb(tmp_path, capsys):
    module = WithAMegabyte()
    out = fit_printing(tmp_path, capsys, module=module)
    assert "other params" not in out
    size_bytes = sum(a.nbytes for a in _leaves(module.parameters()))
    assert size_bytes > 1_000_000  # (Lightning's MB: 1e6 bytes, not a MiB's 1,048,576)
    assert totals(out)["Total estimated model params size (MB)"] == f"{size_bytes / 1e6:,.3f}"
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if "Name" in line and "Type" in line)
    assert lines[header - 1] == ""  # (Lightning logs "\n" + the table)


def test_the_counts_are_the_parameters_sizes():
    module = Nested()
    summary = ModelSummary(max_depth=-1).summary(module)
    by_name = {row.name: row.params for row in summary.rows}
    assert by_name["encoder.proj"] == module.encoder.proj.weight.size + module.encoder.proj.bias.size
    assert summary.total_params == sum(a.size for a in [*_leaves(module.parameters())])
    assert summary.trainable_params == sum(a.size for a in _leaves(module.trainable_parameters()))
    assert summary.size_bytes == sum(a.nbytes for a in _leaves(module.parameters()))


def test_the_size_in_mb_is_the_bytes_of_each_parameters_own_dtype():
    module = Nested()
    module.set_dtype(mx.bfloat16)  # (bf16-true weights: 2 bytes each, not float32's 4)
    summary = ModelSummary().summary(module)
    assert summary.size_bytes == 2 * summary.total_params
    assert totals(summary.table())["Total estimated model params size (MB)"] == f"{2 * 137 / 1e6:,.3f}"


def _leaves(tree):
    from mlx.utils import tree_flatten

    return [array for _, array in tree_flatten(tree)]


def test_max_depth_minus_one_lists_every_level_and_a_list_of_modules_is_one_level_down():
    rows = ModelSummary(max_depth=-1).summary(Nested()).rows
    assert [(row.name, row.type, row.params) for row in rows] == [
        ("encoder", "Encoder", 114),
        ("encoder.proj", "Linear", 30),
        ("encoder.blocks.0", "Linear", 42),
        ("encoder.blocks.1", "Linear", 42),
        ("head", "Linear", 21),
    ]
    assert [row.name for row in ModelSummary(max_depth=2).summary(Nested()).rows] == [
        row.name for row in rows
    ]


def test_max_depth_zero_prints_nothing_as_lightnings_callback(tmp_path, capsys):
    out = fit_printing(tmp_path, capsys, callbacks=[ModelSummary(max_depth=0)])
    assert "Total params" not in out and "Name" not in out


def test_a_module_in_eval_mode_shows_eval(tmp_path, capsys):
    module = Nested()
    module.encoder.eval()  # (fit warns that it trains in that mode)
    with pytest.warns(UserWarning, match="eval mode"):
        out = fit_printing(tmp_path, capsys, module=module)
    assert table_rows(out)[0] == ["0", "encoder", "Encoder", "114", "eval"]
    assert totals(out)["Modules in eval mode"] == "4" and totals(out)["Modules in train mode"] == "1"


def test_large_counts_are_abbreviated_as_lightning_does():
    from audiotrain.train.callbacks.model_summary import human_readable_count

    counts = (0, 123, 1234, 100_000, 132_096, 2_000_000, 3 * 10**9, 10**15)
    assert [human_readable_count(n) for n in counts] == [
        "0  ",
        "123  ",
        "1.2 K",
        "100 K",  # (three digits: no decimal)
        "132 K",
        "2.0 M",
        "3.0 B",
        "1,000 T",  # (T is the largest unit)
    ]


def test_enable_model_summary_false_prints_none(tmp_path, capsys):
    out = fit_printing(tmp_path, capsys, enable_model_summary=False)
    assert "Total params" not in out


def test_a_model_summary_passed_replaces_the_default(tmp_path, capsys):
    trainer = quiet_trainer(tmp_path, max_epochs=1, callbacks=[ModelSummary(max_depth=-1)])
    assert [type(cb) for cb in trainer.callbacks].count(ModelSummary) == 1
    trainer.fit(Nested(), make_batches(32))
    out = capsys.readouterr().err
    assert out.count("Total params") == 1
    assert [row[1] for row in table_rows(out)] == [
        "encoder",
        "encoder.proj",
        "encoder.blocks.0",
        "encoder.blocks.1",
        "head",
        # The root's own array is in no row at any depth: it was left out here, where every level's rows
        # (which repeat their parents' parameters) added up to more than the total.
        "other params",
    ]
    assert table_rows(out)[-1][3] == "2"  # Nested's temperature


def test_a_model_summary_passed_with_enable_model_summary_false_is_refused():
    with pytest.raises(
        ValueError, match=r"Trainer\(enable_model_summary=False\) conflicts with the ModelSummary"
    ):
        quiet_trainer(".", max_epochs=1, enable_model_summary=False, callbacks=[ModelSummary()])


def test_validate_test_and_predict_print_no_summary(tmp_path, capsys):
    trainer = quiet_trainer(tmp_path, max_epochs=1)
    module = TinyClassifier()
    trainer.validate(module, make_batches(32))
    trainer.test(module, make_batches(32))
    trainer.predict(module, [x for x, _ in make_batches(32)])
    assert "Total params" not in capsys.readouterr().err


def test_each_fit_prints_it_once(tmp_path, capsys):
    trainer = quiet_trainer(tmp_path, max_epochs=1)
    module = TinyClassifier()
    trainer.fit(module, make_batches(32))
    trainer.max_epochs = 2
    trainer.fit(module, make_batches(32))
    assert capsys.readouterr().err.count("Total params") == 2


def test_only_rank_0_prints_it(tmp_path, capsys, monkeypatch):
    from audiotrain.distributed import collectives

    monkeypatch.setattr(collectives, "is_main_process", lambda: False)  # (as rank 1 of a job sees itself)
    assert "Total params" not in fit_printing(tmp_path, capsys)


@pytest.mark.parametrize("bad", [-2, 1.5, "full", True])
def test_a_bad_max_depth_is_refused(bad):
    with pytest.raises(ValueError, match=r"ModelSummary\(max_depth=.*expected an int >= -1"):
        ModelSummary(max_depth=bad)


@pytest.mark.parametrize("bad", ["full", 1, "top"])
def test_a_bad_enable_model_summary_is_refused(bad):
    with pytest.raises(ValueError, match=r"Trainer\(enable_model_summary=.*True or False"):
        quiet_trainer(".", max_epochs=1, enable_model_summary=bad)


def test_lightnings_1x_weights_summary_says_what_replaced_it():
    with pytest.raises(ValueError, match=r"weights_summary='full'.*ModelSummary\(max_depth=-1\)"):
        quiet_trainer(".", max_epochs=1, weights_summary="full")


def test_stdout_keeps_what_the_users_code_prints(tmp_path, capsys):
    trainer = quiet_trainer(tmp_path, max_epochs=1)
    trainer.fit(Nested(), make_batches(32))
    printed = capsys.readouterr()
    assert "Total params" in printed.err and printed.out == ""


def test_a_second_fit_with_nothing_left_to_train_prints_no_table_only_why(tmp_path, capsys):
    """The same Trainer fit again at its max_epochs (a notebook cell run twice) printed the model's table
    again, as if a run started, then warned that there was nothing to train."""
    trainer = quiet_trainer(tmp_path, max_epochs=1, enable_model_summary=True)
    module = TinyClassifier()
    trainer.fit(module, make_batches())
    assert capsys.readouterr().err.count("Total params") == 1
    with pytest.warns(UserWarning, match="nothing to train, already at epoch 1"):
        trainer.fit(module, make_batches())
    assert "Total params" not in capsys.readouterr().err


class SharedLayer(TinyClassifier):
    """TinyClassifier and one 4x4 layer used under two names (MLX's weight tying: one module, one weight)."""

    def __init__(self):
        super().__init__()
        self.shared = nn.Linear(4, 4, bias=False)  # 16
        self.alias = self.shared


def test_a_layer_used_under_two_names_is_counted_once_as_lightning_counts_a_shared_parameter(
    tmp_path, capsys
):
    # The table said 16 parameters more than the model has ("32 Total params" for one 4x4 layer used twice).
    module = SharedLayer()
    out = fit_printing(tmp_path, capsys, module=module)
    distinct = {id(a): a for a in _leaves(module.parameters())}.values()
    assert totals(out)["Total params"] == str(sum(a.size for a in distinct))
    assert (
        totals(out)["Total estimated model params size (MB)"]
        == f"{sum(a.nbytes for a in distinct) / 1e6:,.3f}"
    )
    named = len(list(module.named_modules())) - 1  # (the root not counted)
    assert totals(out)["Modules in train mode"] == str(named - 1)  # `alias` is `shared`
    assert "other params" not in out


def test_a_subclass_overriding_summarize_gets_lightnings_arguments_instead_of_the_print(tmp_path, capsys):
    """Lightning's way to show the summary elsewhere: a ModelSummary subclass overriding the staticmethod
    `summarize`, which gets the columns as (header, cells), the counts, the size in MB, the modes and the
    keyword arguments given to ModelSummary besides max_depth. It raised "ModelSummary.__init__() got an
    unexpected keyword argument" and, without one, was never called. Lightning 2.6.6 on its BoringModel:
    summary_data[1] == ("Name", ["layer"]), [2] ("Type", ["Linear"]), [4] ("Mode", ["train"]), 66 and 66."""
    got = {}

    class KeepsIt(ModelSummary):
        @staticmethod
        def summarize(summary_data, total_parameters, trainable_parameters, model_size, modes, **kwargs):
            got.update(data=summary_data, counts=(total_parameters, trainable_parameters), modes=modes)
            got.update(size=model_size, kwargs=kwargs)

    module = Nested()
    quiet_trainer(tmp_path, max_epochs=1, callbacks=[KeepsIt(max_depth=1, to="wandb")]).fit(
        module, make_batches(32)
    )
    assert [header for header, _ in got["data"]] == [" ", "Name", "Type", "Params", "Mode"]
    assert got["data"][1] == ("Name", ["encoder", "head", "other params"])
    assert got["data"][2] == ("Type", ["Encoder", "Linear", "n/a"])
    assert got["data"][4] == ("Mode", ["train", "train", "n/a"])
    assert got["counts"] == (137, 116) and got["modes"] == {"train": 5, "eval": 0}
    assert got["size"] == pytest.approx(137 * 4 / 1e6)
    assert got["kwargs"] == {"total_flops": 0, "to": "wandb"}
    assert "Total params" not in capsys.readouterr().err  # the override replaced the print
