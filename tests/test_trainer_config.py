"""`TrainerConfig` from presets, files and overrides: what a user writes, and the errors they get back."""

import dataclasses
import json
import os
from pathlib import Path

from audiotrain.trainer_config import TrainerConfig, resolve_config

import pytest


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "section, line, message",
    [
        ("data", "batch_size: 0", "data.batch_size must be an integer >= 1 and <= 65536, got 0"),
        ("data", "num_workers: -1", "data.num_workers must be an integer >= 0 and <= 256, got -1"),
        (
            "training",
            "max_steps: 0",
            "training.max_steps must be an integer >= 1 and <= 1000000000, or none, got 0",
        ),
        ("training", "gradient_clip: -1.0", "training.gradient_clip must be a finite number > 0, or none"),
        ("training", "limit_train_batches: 0", "training.limit_train_batches must be an integer >= 1"),
        ("training", "limit_val_batches: -1", "training.limit_val_batches must be an integer >= 0"),
        ("training", "seed: -1", "training.seed must be an integer >= 0"),
        ("training", "patience: -1", "training.patience must be an integer >= 0 and <= 100000, got -1"),
        ("training", "num_epochs: 0", "training.num_epochs must be an integer >= 1 and <= 100000, got 0"),
        (
            "training",
            "accumulate_grad_batches: 0",
            "training.accumulate_grad_batches must be an integer >= 1",
        ),
        ("training", "precision: 16-mixed", "training.precision must be one of '32', 'bf16-mixed'"),
        ("scheduler", "min_lr_ratio: -1.0", "scheduler.min_lr_ratio must be a finite number >= 0 and <= 1"),
        ("scheduler", "min_lr_ratio: 5.0", "scheduler.min_lr_ratio must be a finite number >= 0 and <= 1"),
        # A warmup as long as the run leaves no steps to decay over.
        (
            "scheduler",
            "warmup_ratio: 1.0",
            "scheduler.warmup_ratio must be a finite number >= 0 and < 1, got 1.0",
        ),
        ("optimizer", "weight_decay: -0.1", "optimizer.weight_decay must be a finite number >= 0"),
        ("optimizer", "learning_rate: .inf", "optimizer.learning_rate must be a finite number > 0, got inf"),
        ("optimizer", "momentum: 1.0", "optimizer.momentum must be a finite number >= 0 and < 1"),
        # Adam has no weight decay in MLX: it was dropped without a word.
        (
            "optimizer",
            "{type: adam, weight_decay: 0.05}",
            "optimizer.weight_decay is 0.05 with optimizer.type",
        ),
        (
            "optimizer",
            "{type: adamw, momentum: 0.9}",
            "optimizer.momentum is 0.9 with optimizer.type 'adamw'",
        ),
    ],
)
def test_a_bad_value_in_a_file_names_the_file_its_line_and_the_field(tmp_path, section, line, message):
    file = write(tmp_path, "run.yaml", f"{section}:\n  {line}\n")
    with pytest.raises(ValueError) as caught:
        resolve_config(file)
    assert str(caught.value).startswith(f"{file} line 2: {message}")


def test_a_bad_override_names_the_field():
    with pytest.raises(
        ValueError, match="overrides: data.batch_size must be an integer >= 1 and <= 65536, got 0"
    ):
        resolve_config("quick_test", overrides={"batch_size": 0})


@pytest.mark.parametrize(
    "overrides",
    [
        {"scheduler": "cosine", "warmup_ratio": 0.1},  # (a raw TypeError: 'str' object does not support ...)
        {"optimizer": "sgd", "learning_rate": 0.1},
        {"scheduler": "cosine"},  # (said only "field 'scheduler' must be a mapping of fields, got str")
    ],
)
def test_a_section_given_one_value_as_an_override_says_how_to_give_it(overrides):
    """create_trainer(model, scheduler="cosine", warmup_ratio=0.1): the section's name given the value of its
    `type` is refused naming the dict that sets it, whatever other overrides go into that section."""
    (section, value), *_ = overrides.items()
    with pytest.raises(
        ValueError, match=rf"overrides: {section}={value!r} .*{section}={{'type': {value!r}}}"
    ):
        resolve_config("quick_test", overrides=overrides)
    given_so = {section: {"type": value}, **{k: v for k, v in overrides.items() if k != section}}
    assert getattr(resolve_config("quick_test", overrides=given_so), section).type == value


@pytest.mark.parametrize("section", ["scheduler", "optimizer"])
def test_a_section_given_none_as_an_override_is_told_to_leave_it_out(section):
    # scheduler=None (a user turning the scheduler off) was told to give scheduler={'type': None}, which is
    # refused in turn; before 8dd8b22d it was "an empty section: give it settings, or remove it".
    with pytest.raises(ValueError, match=rf"overrides: {section}=None .*leave {section} out") as caught:
        resolve_config("quick_test", overrides={section: None})
    assert "'type': None" not in str(caught.value)


@pytest.mark.parametrize(
    "line, message",
    [
        # 10**9 workers were accepted, and train() hung making a queue for each.
        ("data: {num_workers: 1000000000}", "data.num_workers must be an integer >= 0 and <= 256"),
        ("data: {batch_size: 100000000}", "data.batch_size must be an integer >= 1 and <= 65536"),
        ("training: {num_epochs: 1000000000000000000000000000000}", "training.num_epochs must be an integer"),
        (
            "training: {patience: 9223372036854775808}",
            "training.patience must be an integer >= 0 and <= 100000",
        ),
        (
            "training: {max_steps: 9223372036854775808}",
            "training.max_steps must be an integer >= 1 and <= 10",
        ),
        ("training: {accumulate_grad_batches: 9223372036854775808}", "training.accumulate_grad_batches must"),
        ("training: {limit_train_batches: 9223372036854775808}", "training.limit_train_batches must"),
        ("training: {limit_val_batches: 9223372036854775808}", "training.limit_val_batches must"),
        # (the recipes' bound, SEED_MAX)
        ("training: {seed: 9223372036854775808}", "training.seed must be an integer >= 0 and <= 2**63 - 1"),
    ],
)
def test_counts_have_the_recipes_upper_bounds(tmp_path, line, message):
    """The recipes refuse `--data.num_workers 257`; the same value in a create_trainer config ran."""
    file = write(tmp_path, "run.yaml", line + "\n")
    with pytest.raises(ValueError) as caught:
        resolve_config(file)
    assert str(caught.value).startswith(f"{file} line 1: {message}")


@pytest.mark.parametrize("name", ["../../escape", "a/b", "a\\b", "\x00", "", "  "])
@pytest.mark.parametrize("field", ["run.run_name", "kaggle.competition_name"])
def test_a_run_name_must_be_one_folder_name_under_runs(tmp_path, field, name):
    """Without run.run_dir it names runs/<name>-<date>-<time>: '../../escape' trained into a folder outside
    runs/, and a NUL met a raw ValueError as the first checkpoint was written."""
    section, key = field.split(".")
    refused = rf"{field} must (be a folder name for runs/|not contain NUL)"
    with pytest.raises(ValueError, match=rf"overrides: {refused}"):
        resolve_config("quick_test", overrides={field: name})
    file = write(tmp_path, "run.json", json.dumps({section: {key: name}}))
    with pytest.raises(ValueError, match=rf"run.json( line 1)?: {refused}"):
        resolve_config(file)
    assert resolve_config("quick_test", overrides={field: "my run.2"}).to_dict()[section][key] == "my run.2"


@pytest.mark.parametrize("field", ["run.run_name", "kaggle.competition_name"])
def test_with_a_run_dir_the_run_name_only_labels_the_run(tmp_path, field):
    """With run.run_dir set the name makes no folder (it names the MLflow run, whose names may hold '/'):
    'exp/v2' was refused there, with advice to set the run_dir it already had. A NUL stays refused."""
    section, key = field.split(".")
    run_dir = str(tmp_path / "out")
    settings = {"run": {"run_dir": run_dir, "mlflow": True}}
    settings.setdefault(section, {})[key] = "exp/v2"
    file = write(tmp_path, "rn.json", json.dumps(settings))
    assert resolve_config(file).to_dict()[section][key] == "exp/v2"
    # The file's name, once the overrides give the run its folder.
    named = write(tmp_path, "named.json", json.dumps({section: {key: "exp/v2"}}))
    assert resolve_config(named, overrides={"run_dir": run_dir}).to_dict()[section][key] == "exp/v2"
    with pytest.raises(ValueError, match=rf"overrides: {field} must not contain NUL, got 'a\\x00'"):
        resolve_config(file, overrides={field: "a\x00"})
    # Without run_dir, the message says the name is the folder's and how to keep it as a label only.
    with pytest.raises(ValueError, match=r"named.json: .* while run.run_dir is unset \(set run.run_dir"):
        resolve_config(named)


def test_the_optimizer_section_builds_torch_optims_optimizers():
    """AdamW / Adam came without bias correction (first updates ~3x the learning rate), and sgd got the
    section's weight decay 0.01 as an L2 penalty (torch's SGD has none)."""
    from audiotrain.declarative import optimizer_from_config

    import mlx.optimizers as optim

    def built(**optimizer):
        config = resolve_config("quick_test", overrides={"optimizer": optimizer})
        return optimizer_from_config(config, total_steps=10).optimizer

    adamw, adam, sgd = built(), built(type="adam"), built(type="sgd", momentum=0.9)
    assert type(adamw) is optim.AdamW and adamw.bias_correction and adamw.weight_decay == 0.01
    assert type(adam) is optim.Adam and adam.bias_correction
    assert type(sgd) is optim.SGD and (sgd.weight_decay, sgd.momentum) == (0.0, 0.9)
    assert built(type="sgd", weight_decay=1e-4).weight_decay == 1e-4
    # 0 is a weight decay the user chose, not a setting left unset that takes the type's default.
    assert built(weight_decay=0.0).weight_decay == 0.0
    assert not built(bias_correction=False).bias_correction  # MLX's own Adam, as audiotrain had it


def test_the_warmup_of_a_warmup_ratio_is_rounded_up_as_hugging_faces_trainer_rounds_it():
    """warmup_ratio 0.1 of 13 optimizer steps is 1.3 steps: Hugging Face's Trainer warms up for ceil(1.3) = 2,
    and so does this (it rounded to 1, the first update already at the peak rate; 0.1 of 5 steps, 0.5,
    rounded to no warmup at all)."""
    from audiotrain.declarative import optimizer_from_config

    import mlx.core as mx

    def built(total_steps):
        config = resolve_config(
            "quick_test", overrides={"scheduler": {"type": "cosine", "warmup_ratio": 0.1}}
        )
        return optimizer_from_config(config, total_steps).optimizer

    warmups = {n: built(n)._schedulers["learning_rate"].warmup_steps for n in (5, 10, 13, 17, 25)}
    assert warmups == {5: 1, 10: 1, 13: 2, 17: 2, 25: 3}  # math.ceil(0.1 * n)
    optimizer, weight = built(13), {"w": mx.zeros(1)}
    rates = []
    for _ in range(3):
        optimizer.update(weight, {"w": mx.ones(1)})
        rates.append(optimizer.learning_rate.item())
    peak = resolve_config("quick_test").optimizer.learning_rate
    # The first update below the peak, the second at it, then the cosine decay.
    assert rates[0] == pytest.approx(peak / 2) and rates[1] == pytest.approx(peak) and rates[2] < rates[1]


def test_a_linear_schedule_warms_up_then_decays_to_zero_whatever_min_lr_ratio_says():
    """scheduler.type linear, as Hugging Face's get_linear_schedule_with_warmup: a warmup of warmup_ratio of
    the steps, then a straight line down to 0 at the last step; min_lr_ratio is the cosine's floor only."""
    from audiotrain.declarative import optimizer_from_config

    import mlx.core as mx

    config = resolve_config(
        "quick_test", overrides={"scheduler": {"type": "linear", "warmup_ratio": 0.2, "min_lr_ratio": 0.5}}
    )
    optimizer, weight = optimizer_from_config(config, total_steps=10).optimizer, {"w": mx.zeros(1)}
    rates = []
    for _ in range(10):
        optimizer.update(weight, {"w": mx.ones(1)})
        rates.append(optimizer.learning_rate.item())
    peak = config.optimizer.learning_rate
    # 2 warmup steps, then 8 steps down to 0 (the last update's rate is 1/8 of the peak).
    assert rates == pytest.approx(
        [peak * f for f in (0.5, 1, 1, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8)]
    )


def test_precision_may_be_written_as_the_number_32(tmp_path):
    config = resolve_config(write(tmp_path, "run.yaml", "training:\n  precision: 32\n"))
    assert config.training.precision == "32"
    assert resolve_config(overrides={"precision": "bf16"}).training.precision == "bf16-mixed"


@pytest.mark.parametrize(
    ("name", "ours"),
    [
        ("gradient_accumulation_steps", "accumulate_grad_batches"),  # had suggested 'gradient_clip'
        ("max_grad_norm", "gradient_clip"),
        ("lr", "learning_rate"),
        ("fp16", "precision"),
        ("per_device_train_batch_size", "batch_size"),  # had suggested 'limit_train_batches'
    ],
)
def test_an_override_by_another_librarys_name_suggests_the_setting_of_that_name(name, ours):
    # Seed 003 promises gradient accumulation without naming its key; a user tries Hugging Face's name.
    with pytest.raises(ValueError, match=rf"unknown setting {name!r}; did you mean {ours!r}\?"):
        resolve_config(overrides={name: 4})


def test_a_config_file_setting_by_another_librarys_name_suggests_the_setting_of_that_name(tmp_path):
    path = write(tmp_path, "run.yaml", "training:\n  gradient_accumulation_steps: 4\n")
    with pytest.raises(ValueError, match=r"did you mean 'training.accumulate_grad_batches'\?"):
        resolve_config(path)  # (it had suggested 'training.gradient_clip')


def test_an_ambiguous_plain_override_names_the_sections_that_have_it():
    with pytest.raises(ValueError) as caught:
        resolve_config(overrides={"type": "sgd"})
    assert "'type' is a setting of optimizer and scheduler: write optimizer.type or scheduler.type" in str(
        caught.value
    )
    with pytest.raises(ValueError, match="did you mean 'optimizer.type' or 'scheduler.type'"):
        resolve_config(overrides={"typ": "sgd"})
    # A misspelt section, as a section override: that section is suggested, as a file's misspelt one is.
    with pytest.raises(ValueError, match=r"unknown setting 'trainig'; did you mean 'training'\?"):
        resolve_config(overrides={"trainig": {"num_epochs": 2}})
    with pytest.raises(ValueError, match=r"unknown setting 'optimiser'; did you mean 'optimizer'\?"):
        resolve_config(overrides={"optimiser": {"type": "sgd"}})
    # the Python spellings of a section's setting
    config = resolve_config(overrides={"optimizer": {"type": "sgd"}, "scheduler.type": "linear"})
    assert (config.optimizer.type, config.scheduler.type) == ("sgd", "linear")


def test_paths_may_be_pathlib_paths(tmp_path):
    config = resolve_config(overrides={"run_dir": tmp_path / "run", "tracking_uri": tmp_path / "x.db"})
    assert config.run.run_dir == str(tmp_path / "run") and config.run.tracking_uri == str(tmp_path / "x.db")
    with pytest.raises(ValueError, match="field 'training.monitor' must be str"):
        resolve_config(overrides={"monitor": Path("val_loss")})  # a path only where a path is meant


def test_a_config_file_without_suffix_is_read_not_taken_for_a_preset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "myrun", "training:\n  num_epochs: 2\n")
    assert resolve_config("myrun").training.num_epochs == 2  # an existing file, in the current folder
    (tmp_path / "cfg").mkdir()
    write(tmp_path / "cfg", "noext", "training:\n  num_epochs: 3\n")
    assert resolve_config("cfg/noext").training.num_epochs == 3
    with pytest.raises(FileNotFoundError, match="config file cfg/missing does not exist"):
        resolve_config("cfg/missing")  # a path, not an unknown preset
    with pytest.raises(FileNotFoundError, match="config file missing.yaml does not exist"):
        resolve_config("missing.yaml")  # a suffix makes it a path, not a misspelt preset
    with pytest.raises(ValueError, match="unknown preset 'prodution'"):
        resolve_config("prodution")
    # A preset's name is the preset, even beside a file of that name (create_trainer's default is one);
    # "./production" or a Path reads the file.
    write(tmp_path, "production", "training:\n  num_epochs: 7\n")
    assert resolve_config("production").training.num_epochs == 50
    assert resolve_config("./production").training.num_epochs == 7
    assert resolve_config(Path("production")).training.num_epochs == 7
    (tmp_path / "best").mkdir()
    write(tmp_path / "best", "trainer_state.json", "{}")
    with pytest.raises(
        FileNotFoundError, match=f"best is a folder.*pass the file in it: best{os.sep}trainer"
    ):
        resolve_config(Path("best"))


def test_other_suffixes_are_refused_and_empty_files_change_nothing(tmp_path):
    toml = write(tmp_path, "run.toml", "[training]\nnum_epochs = 2\n")
    with pytest.raises(
        ValueError, match=r"run.toml: unknown suffix '.toml'; .*\(.yaml, .yml\) or JSON \(.json\)"
    ):
        resolve_config(toml)
    for name in ("empty.json", "empty.yaml"):
        assert resolve_config(write(tmp_path, name, "\n")) == TrainerConfig()


def test_a_yaml_error_names_the_file_and_line(tmp_path):
    file = write(tmp_path, "bad.yaml", "training:\n  num_epochs: 2\n  mode: max\n   seed: 3\n")
    with pytest.raises(ValueError, match=f'in "{file}", line 4'):
        resolve_config(file)
    # A tab where YAML wants spaces is named (libyaml's message names no character).
    tabbed = write(tmp_path, "tabs.yaml", "training:\n\tnum_epochs: 2\n")
    with pytest.raises(
        ValueError, match=r"(?s)tabs.yaml: not valid YAML: .*line 2 has a tab there: YAML indents with spaces"
    ):
        resolve_config(tabbed)


def test_a_file_preset_must_be_a_preset_name(tmp_path):
    with pytest.raises(ValueError, match=r"null.yaml: preset must be one of quick_test, .*, got None"):
        resolve_config(write(tmp_path, "null.yaml", "preset: null\n"))
    with pytest.raises(ValueError, match=r"typo.yaml: unknown preset 'prodution' \(did you mean"):
        resolve_config(write(tmp_path, "typo.yaml", "preset: prodution\n"))


def test_a_misspelt_nested_field_is_suggested_with_its_section(tmp_path):
    with pytest.raises(
        ValueError, match=r"unknown field 'training.epochs'; did you mean 'training.num_epochs'\?"
    ):
        resolve_config(write(tmp_path, "typo.yaml", "training:\n  epochs: 3\n"))
    # A misspelt or empty section: named with its line, as a misspelt setting is.
    with pytest.raises(
        ValueError, match=r"section.yaml line 3: unknown field 'trainig'; did you mean 'training'"
    ):
        resolve_config(
            write(tmp_path, "section.yaml", "optimizer:\n  type: sgd\ntrainig:\n  num_epochs: 3\n")
        )
    with pytest.raises(
        ValueError,
        match=r"empty.yaml line 3: field 'training' must be a mapping of fields, got nothing \(an empty",
    ):
        resolve_config(
            write(tmp_path, "empty.yaml", "optimizer:\n  type: sgd\ntraining:\n#  num_epochs: 3\n")
        )


SEED003_YAML = """# trainer_config.yaml
optimizer:
  type: adamw
  learning_rate: 2e-5
  weight_decay: 0.01

scheduler:
  type: cosine
  warmup_ratio: 0.1

data:
  batch_size: 32
  num_workers: 8

training:
  num_epochs: 10
  eval_strategy: epoch
  early_stopping: true

kaggle:
  competition_name: titanic
  cv_folds: 5
  enable_ensemble: true
"""


def test_seed003_hierarchical_yaml_loads_as_written(tmp_path):
    config = resolve_config(write(tmp_path, "trainer_config.yaml", SEED003_YAML))
    assert (config.optimizer.learning_rate, config.data.num_workers, config.training.num_epochs) == (
        2e-5,
        8,
        10,
    )
    assert (config.training.eval_strategy, config.training.eval_steps, config.training.early_stopping) == (
        "epoch",
        None,
        True,
    )
    assert (config.kaggle.competition_name, config.kaggle.cv_folds, config.kaggle.enable_ensemble) == (
        "titanic",
        5,
        True,
    )


@pytest.mark.parametrize(
    "lines, message",
    [
        ("  eval_strategy: step", "training.eval_strategy must be 'epoch', 'steps' or 'no', got 'step'"),
        ("  eval_strategy: steps", "training.eval_strategy 'steps' needs training.eval_steps"),
        ("  eval_steps: 50", "training.eval_steps is 50, but training.eval_strategy is 'epoch'"),
        ("  eval_strategy: steps\n  eval_steps: 0", "training.eval_steps must be an integer >= 1"),
        ("  eval_strategy: 'no'", "eval_strategy 'no' never validates, but training.monitor is 'val_loss'"),
        # Validation turned off another way: refused alike, not after the first epoch by ModelCheckpoint.
        ("  limit_val_batches: 0", "limit_val_batches 0 turns validation off, but training.monitor is 'val_"),
    ],
)
def test_eval_strategy_and_eval_steps_must_agree(tmp_path, lines, message):
    with pytest.raises(ValueError, match=rf"run.yaml line \d: .*{message}"):
        resolve_config(write(tmp_path, "run.yaml", f"training:\n{lines}\n"))
    # An unquoted `no` is YAML 1.1's false: read as "no".
    for value in ("'no'", "no"):
        text = f"training:\n  eval_strategy: {value}\n  monitor: train_loss\n"
        assert resolve_config(write(tmp_path, "ok.yaml", text)).training.eval_strategy == "no"


def test_the_kaggle_section_is_checked_and_has_plain_overrides(tmp_path):
    with pytest.raises(ValueError, match="kaggle.cv_folds must be an integer >= 2, got 1"):
        resolve_config(write(tmp_path, "run.yaml", "kaggle:\n  cv_folds: 1\n"))
    with pytest.raises(ValueError, match="unknown field 'kaggle.submit'"):
        resolve_config(write(tmp_path, "run.yaml", "kaggle:\n  submit: true\n"))
    config = resolve_config("kaggle", overrides={"cv_folds": 3, "competition_name": "house_prices"})
    assert (config.kaggle.cv_folds, config.kaggle.competition_name, config.kaggle.enable_ensemble) == (
        3,
        "house_prices",
        True,  # the kaggle preset's
    )


def test_seed003_configuration_names():
    from audiotrain import BaseTrainerConfig, KaggleTrainerConfig, SchedulerConfig, get_trainer_config

    config = get_trainer_config("production", num_epochs=20)
    assert config == resolve_config("production", overrides={"num_epochs": 20})
    assert BaseTrainerConfig is TrainerConfig and KaggleTrainerConfig is TrainerConfig
    assert BaseTrainerConfig(scheduler=SchedulerConfig(type="linear")).scheduler.type == "linear"
    with pytest.raises(ValueError, match="scheduler.type must be 'cosine', 'linear' or 'constant'"):
        SchedulerConfig(type="step")


def test_the_seed_field_says_the_weights_need_seed_everything_before_the_module_is_built():
    from audiotrain.trainer_config import TrainingSettings

    (seed,) = [f for f in dataclasses.fields(TrainingSettings) if f.name == "seed"]
    assert "weights order" not in seed.metadata["help"]
    assert (
        "weights are drawn when it is built: seed_everything(seed) before building it"
        in seed.metadata["help"]
    )


# ---- a TrainerConfig edited in Python, and a dict, are checked as a file is --------------------------------


@pytest.mark.parametrize(
    "section, name, value, message",
    [
        ("optimizer", "type", "adamax", "optimizer.type must be 'adamw', 'adam' or 'sgd', got 'adamax'"),
        (
            "optimizer",
            "learning_rate",
            -5.0,
            r"optimizer.learning_rate must be a finite number > 0, got -5.0",
        ),
        ("training", "num_epochs", "abc", r"field 'training.num_epochs' must be int, got 'abc'"),
    ],
)
def test_an_edited_config_object_is_checked_naming_the_field(section, name, value, message):
    # The README's pattern: get a preset, edit its fields, give it to create_trainer.
    import audiotrain

    config = audiotrain.get_trainer_config("quick_test")
    setattr(getattr(config, section), name, value)
    with pytest.raises(ValueError, match=f"TrainerConfig object: {message}"):
        audiotrain.get_trainer_config(config)
    with pytest.raises(ValueError, match=message):
        resolve_config(config, overrides={"seed": 1})


def test_a_dict_config_is_read_as_a_file_is():
    config = resolve_config({"preset": "quick_test", "training": {"num_epochs": 2}}, overrides={"seed": 3})
    assert (config.training.num_epochs, config.training.limit_train_batches, config.training.seed) == (
        2,
        4,
        3,
    )
    assert (
        resolve_config({"optimizer": {"type": "sgd"}}).training.num_epochs
        == TrainerConfig().training.num_epochs
    )
    with pytest.raises(ValueError, match=r"config dict: unknown field 'training.num_epocs'; did you mean"):
        resolve_config({"training": {"num_epocs": 2}})
    with pytest.raises(ValueError, match=r"config dict: .*optimizer.type must be"):
        resolve_config({"optimizer": {"type": "adamax"}})


@pytest.mark.parametrize("config", [3, ["quick_test"], b"quick_test"])
def test_a_config_of_another_type_is_refused_naming_what_is_taken(config):
    import audiotrain

    expected = r"expected a preset name, a YAML/JSON path, a dict or a TrainerConfig, got "
    with pytest.raises(TypeError, match=rf"^get_trainer_config\(config=\.\.\.\): {expected}"):
        audiotrain.get_trainer_config(config)
    with pytest.raises(TypeError, match=rf"^create_trainer\(config=\.\.\.\): {expected}"):
        resolve_config(config)


@pytest.mark.parametrize("monitor", ["", "  "])
def test_a_blank_monitor_is_refused(monitor):
    with pytest.raises(ValueError, match="overrides: training.monitor must name a metric"):
        resolve_config("quick_test", overrides={"monitor": monitor})


@pytest.mark.parametrize(
    "line, message",
    [
        ("  seed: 0042", "line 2: training.seed: 0042 is read by YAML as an octal number (a leading 0), 34; "
         "write 42, or quote it ('0042')"),
        ("  patience: 010", "line 2: training.patience: 010 is read by YAML as an octal number"),
        ("  limit_train_batches: 1:30", "line 2: training.limit_train_batches: 1:30 is read by YAML as a "
         "base-60 number (a colon), 90"),
    ],
)  # fmt: skip
def test_a_yaml_11_number_that_reads_as_another_is_refused_with_its_line_and_field(tmp_path, line, message):
    """PyYAML (YAML 1.1) read `seed: 0042` as 34 and `1:30` as 90, and the run used them without a word."""
    file = write(tmp_path, "run.yaml", f"training:\n{line}\n")
    with pytest.raises(ValueError) as caught:
        resolve_config(file)
    assert str(caught.value).startswith(f"{file} {message}")
    # Numbers that read as they show are taken: no leading zero, a decimal one (0089), a quoted one.
    for text, seed in (("0", 0), ("0089", 89), ("'0042'", 42), ("007", 7)):
        assert (
            resolve_config(write(tmp_path, "ok.yaml", f"training:\n  seed: {text}\n")).training.seed == seed
        )


def test_a_json_file_with_a_byte_order_mark_is_read_as_a_yaml_one_is(tmp_path):
    """Windows PowerShell writes one: it was refused as 'Unexpected UTF-8 BOM (decode using utf-8-sig)'."""
    file = tmp_path / "run.json"
    file.write_bytes(b"\xef\xbb\xbf" + json.dumps({"training": {"num_epochs": 3}}).encode())
    assert resolve_config(file).training.num_epochs == 3


def test_numpy_scalars_and_a_section_object_are_taken_as_overrides():
    """A sweep over np.array values gives np.int64 / np.float32; seed 003 names the scheduler section's
    class SchedulerConfig."""
    from audiotrain.trainer_config import SchedulerConfig

    import numpy as np

    config = resolve_config(
        "quick_test",
        overrides={
            "batch_size": np.int64(8),
            "learning_rate": np.float32(1e-3),
            "training": {"num_epochs": np.int32(3)},
            "early_stopping": np.bool_(True),
        },
    )
    assert config.data.batch_size == 8 and type(config.data.batch_size) is int
    assert config.optimizer.learning_rate == pytest.approx(1e-3) and config.training.num_epochs == 3
    assert config.training.early_stopping is True
    with pytest.raises(ValueError, match="field 'data.batch_size' must be int, got 8.0"):
        resolve_config("quick_test", overrides={"batch_size": np.float64(8.0)})  # as a float is refused
    config = resolve_config(None, overrides={"scheduler": SchedulerConfig(type="linear")})
    assert config.scheduler == SchedulerConfig(type="linear")


def test_a_type_error_deep_in_a_file_names_its_line(tmp_path):
    """Only duplicate keys and YAML syntax errors had a line; `mode: mx` on line 13 had none."""
    text = "optimizer:\n  learning_rate: 0.001\n" + "\n" * 9 + "training:\n  mode: mx\n  patience: three\n"
    with pytest.raises(ValueError, match=r"run.yaml line 14: field 'training.patience' must be int"):
        resolve_config(write(tmp_path, "run.yaml", text))
    with pytest.raises(ValueError, match=r"run.yaml line 13: training.mode must be 'min' or 'max', got 'mx'"):
        resolve_config(write(tmp_path, "run.yaml", text.replace("  patience: three\n", "")))
    # JSON too, and a misspelt key
    with pytest.raises(ValueError, match=r"run.json line 3: unknown field 'training.epochs'; did you mean"):
        resolve_config(write(tmp_path, "run.json", '{\n "training": {\n  "epochs": 3}\n}\n'))


def test_a_section_given_as_a_dict_keeps_the_dotted_overrides_of_that_section_given_with_it():
    from audiotrain import get_trainer_config

    for overrides in (
        {"num_epochs": 3, "training": {"patience": 1}},
        {"training": {"patience": 1}, "num_epochs": 3},
    ):
        training = get_trainer_config("development", **overrides).training
        assert (training.num_epochs, training.patience) == (3, 1), overrides


def test_the_presets_hold_what_their_users_rely_on():
    """One short epoch, uncompiled and quiet (quick_test); 5 epochs with patience 2 (development, and
    create_trainer's default); 50 epochs with a 5% warmup (production)."""
    quick = resolve_config("quick_test")
    training = quick.training
    assert (training.num_epochs, training.limit_train_batches, training.limit_val_batches) == (1, 4, 2)
    assert (training.early_stopping, training.compile, training.progress_bar) == (False, False, False)
    assert (quick.scheduler.type, quick.scheduler.warmup_ratio) == ("constant", 0.0)
    development = resolve_config("development").training
    assert (development.num_epochs, development.patience) == (5, 2)
    production = resolve_config("production")
    assert (production.training.num_epochs, production.training.patience) == (50, 5)
    assert production.training.gradient_clip == 1.0
    assert (production.scheduler.type, production.scheduler.warmup_ratio) == ("cosine", 0.05)


def test_get_trainer_config_starts_from_the_development_preset_and_none_from_the_defaults():
    from audiotrain import get_trainer_config

    assert get_trainer_config() == resolve_config("development")
    assert get_trainer_config(None) == TrainerConfig()


def test_two_config_files_are_refused_rather_than_one_ignored(tmp_path):
    first = write(tmp_path, "a.yaml", "training:\n  num_epochs: 3\n")
    second = write(tmp_path, "b.yaml", "training:\n  num_epochs: 4\n")
    with pytest.raises(
        ValueError, match="pass one config file, got config=.*a.yaml.* and config_file=.*b.yaml"
    ):
        resolve_config(first, file=second)
    # The message named a `file=` that neither function has, and no function.
    from audiotrain import get_trainer_config

    with pytest.raises(
        ValueError, match=r"^get_trainer_config\(config=\.\.\., config_file=\.\.\.\): pass one"
    ):
        get_trainer_config(config=first, config_file=second)


def test_setting_source_names_where_each_setting_was_last_set(tmp_path):
    from audiotrain.trainer_config import setting_source

    file = write(tmp_path, "run.yaml", "training:\n  num_epochs: 3\n")
    config = resolve_config("production", file=file, overrides={"learning_rate": 0.5})
    assert setting_source(config, "training.num_epochs") == str(file)
    assert setting_source(config, "optimizer.learning_rate") == "overrides"
    assert setting_source(config, "training.patience") == "preset 'production'"
    assert setting_source(config, "data.batch_size") == "TrainerConfig default"
    assert setting_source(TrainerConfig(), "data.batch_size", "elsewhere") == "elsewhere"


def test_a_section_dict_given_after_a_dotted_override_wins():
    overrides = {"optimizer.learning_rate": 0.1, "optimizer": {"learning_rate": 0.2}}
    assert resolve_config(overrides=overrides).optimizer.learning_rate == 0.2


def test_the_run_name_names_the_run_folder_and_the_competition_name_only_labels_it():
    # With run.run_name set, kaggle.competition_name names no folder, so a '/' in it is no escape from runs/.
    config = resolve_config(overrides={"run_name": "mine", "competition_name": "house/prices"})
    assert (config.run.run_name, config.kaggle.competition_name) == ("mine", "house/prices")
