"""What type checkers (mypy, pyright) see of audiotrain, checked at run time: the PEP 561 marker, the lazy
names spelled out for them, signatures that accept ordinary user code, and the recipe configs taking what a
Python user passes (a `pathlib.Path`, a section as a dict)."""

from __future__ import annotations

import ast
import collections.abc
import importlib
import inspect
import re
import typing
from pathlib import Path

import audiotrain
from audiotrain.recipes.chords import TrainingConfig
from audiotrain.recipes.chords.config import ChordDataConfig
from audiotrain.recipes.clap import ClapRecipeConfig
from audiotrain.recipes.clap.config import ClapDemoConfig, ClapTrainConfig
from audiotrain.train import Trainer, TrainModule

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: The packages whose public names come from a module `__getattr__` (imported on first use).
LAZY_PACKAGES = [
    "audiotrain",
    "audiotrain.train",
    "audiotrain.recipes.chords",
    "audiotrain.recipes.clap",
    "audiotrain.models.clap",
    "audiotrain.datasets",
    "audiotrain.distributed",
]


def test_the_package_ships_the_py_typed_marker():
    # Without it mypy and pyright skip audiotrain ("missing library stubs or py.typed marker").
    assert (Path(audiotrain.__file__).parent / "py.typed").is_file()
    tomllib = pytest.importorskip("tomllib")  # (Python 3.11+)
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "py.typed" in setuptools["package-data"]["audiotrain"]


def _type_checking_imports(package: str) -> dict[str, str]:
    """{name: module} of the `if TYPE_CHECKING:` block of `package`'s __init__."""
    tree = ast.parse(Path(importlib.import_module(package).__file__).read_text())
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom)
                for alias in imp.names:
                    assert alias.asname == alias.name, "an explicit re-export (X as X), as --strict needs"
                    found[alias.name] = imp.module
    return found


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_checkers_see_every_lazy_name_from_the_module_it_comes_from(package):
    module = importlib.import_module(package)
    seen = _type_checking_imports(package)
    public = module._PUBLIC
    assert set(seen) == set(public), "the TYPE_CHECKING block and _PUBLIC name the same names"
    assert set(public) <= set(module.__all__)
    assert set(module.__all__) <= set(dir(module))  # (tab completion offers `audiotrain.__version__` too)
    for name, origin in seen.items():
        # The object a checker reads is the one the lazy __getattr__ gives at run time.
        assert getattr(module, name) is getattr(importlib.import_module(origin), name), name


def _defines_getattr(statement: ast.stmt) -> bool:
    if isinstance(statement, ast.FunctionDef):
        return statement.name == "__getattr__"
    return "__getattr__" in {n.id for n in ast.walk(statement) if isinstance(n, ast.Name)}


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_the_lazy_getattr_is_hidden_from_checkers_so_a_typo_is_an_error(package):
    # A module __getattr__ makes every name valid to mypy and pyright (`from audiotrain import Trainerr`).
    tree = ast.parse(Path(importlib.import_module(package).__file__).read_text())
    for statement in tree.body:
        if isinstance(statement, ast.If) and ast.unparse(statement.test) == "not TYPE_CHECKING":
            continue
        assert not _defines_getattr(statement), ast.unparse(statement)[:80]
    with pytest.raises(AttributeError):
        importlib.import_module(package).Trainerr  # noqa: B018 (the runtime still refuses it)


def test_step_methods_accept_any_override_as_lightnings_do():
    # `(self, batch, batch_idx: int)` or `(self, batch, batch_idx)` without a default are correct overrides.
    for name in ("training_step", "validation_step", "test_step", "predict_step"):
        kinds = [p.kind for p in inspect.signature(getattr(TrainModule, name)).parameters.values()]
        assert kinds == [
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            inspect.Parameter.VAR_POSITIONAL,
            inspect.Parameter.VAR_KEYWORD,
        ], name


def test_annotations_accept_what_the_runtime_accepts():
    hints = inspect.signature(Trainer.__init__).parameters
    assert "int" in hints["precision"].annotation  # Trainer(precision=32)
    assert hints["callbacks"].annotation.startswith("Callback |")  # Trainer(callbacks=ModelCheckpoint())
    assert "Mapping[" in inspect.signature(TrainModule.compute_loss).return_annotation
    assert inspect.signature(TrainModule.load_from_checkpoint).return_annotation == "Self"


class _Loss(TrainModule):
    def compute_loss(self, batch):
        return batch[0].sum()


def test_default_steps_still_take_the_batch_and_its_index():
    import mlx.core as mx

    module, batch, idx = _Loss(), (mx.array([1.0, 2.0]),), mx.array(0)
    assert module.validation_step(batch, idx).item() == 3.0
    assert module.test_step(batch=batch, batch_idx=idx).item() == 3.0
    assert module.training_step(batch).item() == 3.0


@pytest.mark.parametrize(
    "build, read",
    [
        (lambda p: TrainingConfig(checkpoint_dir=p), lambda c: c.checkpoint_dir),
        (lambda p: TrainingConfig(data=ChordDataConfig(data_dir=p)), lambda c: c.data.data_dir),
        (lambda p: ClapRecipeConfig(out=p, data=p), lambda c: c.out),
        (lambda p: ClapDemoConfig(folder=p), lambda c: c.folder),
    ],
)
def test_a_path_in_a_path_setting_is_recorded_as_text(build, read, tmp_path):
    config = build(tmp_path / "x")
    assert read(config) == str(tmp_path / "x")
    if hasattr(config, "to_dict"):
        config.to_dict()  # config.json: was "Object of type PosixPath is not JSON serializable"


def test_a_section_given_as_a_dict_becomes_the_section():
    config = TrainingConfig(data={"demo_songs": 4, "demo_test_songs": 2})
    assert isinstance(config.data, ChordDataConfig) and config.data.demo_songs == 4
    assert config.data.window_frames == ChordDataConfig().window_frames  # the rest: the defaults
    clap = ClapRecipeConfig(train={"epochs": 1, "max_steps": 2})
    assert isinstance(clap.train, ClapTrainConfig) and clap.train.max_steps == 2


def test_a_wrong_section_is_refused_at_once_naming_the_field():
    with pytest.raises(ValueError, match=r"unknown field 'data\.demo_song'; did you mean 'data\.demo_songs'"):
        TrainingConfig(data={"demo_song": 4})
    with pytest.raises(ValueError, match=r"'train\.epoch'"):
        ClapRecipeConfig(train={"epoch": 1})
    with pytest.raises(TypeError, match=r"TrainingConfig\.data: expected a ChordDataConfig"):
        TrainingConfig(data=3)


# What a checker reads where the runtime takes or gives more than one type. tests/typing/ holds user scripts
# that mypy and pyright check against these annotations (its README.md says how to run them).
def test_checkers_know_each_lightning_flag_the_trainer_takes():
    from audiotrain.train import flags

    # `**lightning_flags: Any` took a misspelt flag (Trainer(max_epoch=3)) without a word from a checker.
    kwargs = inspect.signature(Trainer.__init__).parameters["lightning_flags"]
    assert kwargs.annotation == "Unpack[flags.LightningOnlyFlags]"
    assert set(flags.LightningOnlyFlags.__optional_keys__) == set(flags._LIGHTNING_ONLY)
    assert not flags.LightningOnlyFlags.__required_keys__


FEATURES_BY_BACKEND = ["stft", "spectrogram", "melspectrogram", "cqt", "hcqt", "chroma_cqt"]


@pytest.mark.parametrize("name", [*FEATURES_BY_BACKEND, "power_to_db"])
def test_each_feature_overload_takes_the_functions_parameters(name):
    from audiotrain import features

    if not hasattr(typing, "get_overloads"):
        pytest.skip("typing.get_overloads is Python 3.11+")
    function = getattr(features, name)
    overloads = typing.get_overloads(function)
    assert len(overloads) >= 2, "one return type per backend (or per input type), for checkers"
    implementation = inspect.signature(function).parameters
    for overload in overloads:
        # A parameter added to the function alone would be unknown to a checker.
        parameters = inspect.signature(overload).parameters
        assert list(parameters) == list(implementation)
        for parameter in parameters.values():
            if parameter.default is not inspect.Parameter.empty:
                assert parameter.default == implementation[parameter.name].default, parameter.name


@pytest.mark.parametrize("name", FEATURES_BY_BACKEND)
def test_a_feature_is_the_array_its_backend_names_whatever_the_signal(name):
    # What the overloads say: backend="mlx" (the default) an mx.array, "numpy" an np.ndarray.
    from audiotrain import features

    import mlx.core as mx
    import numpy as np

    signal = np.random.default_rng(0).standard_normal(8192).astype(np.float32)
    function = getattr(features, name)
    assert isinstance(function(signal), mx.array)
    assert isinstance(function(mx.array(signal), backend="numpy"), np.ndarray)


def test_the_features_package_binds_cqt_and_stft_to_the_functions_only():
    # mypy reads a name's first binding in a package: while __init__ imported the modules `cqt` and `stft`
    # by name before the functions, `features.cqt(y)` was "Module not callable" to it.
    from audiotrain import features

    tree = ast.parse(Path(features.__file__).read_text())
    bound = [
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    ]
    assert sorted({name for name in bound if bound.count(name) > 1}) == []
    assert inspect.isfunction(features.cqt) and inspect.isfunction(features.stft)


def test_the_clap_recipes_run_returns_its_typed_dict():
    from audiotrain.recipes.clap import ClapRunResult, run

    assert inspect.signature(run).return_annotation == "ClapRunResult"  # (was `dict`)
    assert set(ClapRunResult.__required_keys__) == {"run_dir", "history", "task", "interrupted"}
    assert set(ClapRunResult.__optional_keys__) == {"before", "after", "weights", "export", "eval_set"}


@pytest.mark.parametrize(
    "name", ["train_dataloader", "val_dataloaders", "test_dataloaders", "predict_dataloaders"]
)
def test_the_loaders_a_trainer_holds_are_typed(name):
    returned = inspect.signature(getattr(Trainer, name).fget).return_annotation
    assert returned == "DataLoader | Iterable[Any] | None"  # (was Any)


# The hooks a user overrides, as Lightning's are written: each form must be an override to both checkers
# (tests/typing/module_hooks.py and callback_names.py), and the Trainer still calls each as it is written.
MODULE_HOOKS_OF_TWO_FORMS = ["on_train_epoch_start", "on_train_epoch_end", "on_validation_end", "on_test_end"]


@pytest.mark.parametrize("name", MODULE_HOOKS_OF_TWO_FORMS)
def test_module_hooks_with_audiotrains_arguments_accept_lightnings_form_too(name):
    # `(self, epoch: int)` made Lightning's `on_train_epoch_start(self)` an incompatible override.
    kinds = [p.kind for p in inspect.signature(getattr(TrainModule, name)).parameters.values()]
    assert kinds == [
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.VAR_POSITIONAL,
        inspect.Parameter.VAR_KEYWORD,
    ]
    assert typing.get_type_hints(getattr(TrainModule, name))["return"] is type(None)


def test_the_trainer_calls_each_form_of_the_module_hooks_as_written():
    import mlx.core as mx
    import mlx.optimizers as optim

    calls = []

    class Model(_Loss):
        def __init__(self):
            super().__init__()
            self.w = mx.zeros((1,))

        def compute_loss(self, batch):
            return (self.w * batch).sum()

        def configure_optimizers(self):
            return [optim.SGD(learning_rate=0.1)], [lambda step: mx.array(0.1)]  # ([opt], [schedule])

        def on_train_epoch_start(self):
            calls.append("start()")

        def on_train_epoch_end(self, epoch, metrics):
            calls.append(f"end({epoch}, {sorted(metrics)})")

        def on_train_batch_start(self, batch, batch_idx):
            return -1 if batch_idx == 1 else None  # ends the epoch there

    trainer = Trainer(max_epochs=1, enable_progress_bar=False, enable_checkpointing=False, logger=False)
    trainer.fit(Model(), [mx.ones((2, 1))] * 3)
    assert calls == ["start()", "end(0, ['train_loss'])"]
    assert trainer.global_step == 1


def test_the_return_annotations_hold_what_the_trainer_takes():
    from collections.abc import Sequence

    from audiotrain.train.module import OptimizerConfig, ParameterTree

    import mlx.core as mx
    import mlx.nn as nn
    import mlx.optimizers as optim

    assert (
        typing.get_type_hints(TrainModule.on_train_batch_start)["return"] == int | None
    )  # -1 ends the epoch
    returned = typing.get_args(typing.get_type_hints(TrainModule.configure_optimizers)["return"])
    assert set(returned) == {
        OptimizerConfig,
        optim.Optimizer,
        dict[str, typing.Any],
        Sequence[optim.Optimizer],  # Lightning's `[opt]`
        tuple[Sequence[optim.Optimizer], typing.Any],  # `([opt], [schedule])`, `([opt], schedule)`
    }
    assert typing.get_type_hints(ParameterTree.values)["return"] == list[mx.array]

    class Linear(_Loss):
        def __init__(self):
            super().__init__()
            self.layer = nn.Linear(2, 3)

    values = Linear().parameters().values()  # (the idiom `sum(p.size for p in ...values())`)
    assert isinstance(values, list) and [v.size for v in values] == [6, 3]


def _named_parameters(function) -> list[inspect.Parameter]:
    return [p for p in inspect.signature(function).parameters.values() if p.name != "self"]


def _callback_hooks():
    from audiotrain.train import Callback
    from audiotrain.train.callbacks import BaseFinetuning, BasePredictionWriter
    from audiotrain.train.callbacks.lambda_callback import hook_names

    yield from ((Callback, name) for name in hook_names())
    yield BaseFinetuning, "freeze_before_training"
    yield BaseFinetuning, "finetune_function"
    for name in ("write_on_batch_end", "write_on_epoch_end", "on_predict_batch_end", "on_predict_epoch_end"):
        yield BasePredictionWriter, name


@pytest.mark.parametrize("owner, name", list(_callback_hooks()), ids=lambda v: getattr(v, "__name__", v))
def test_callback_hooks_take_their_arguments_by_position_so_any_names_override_them(owner, name):
    # pyright refused Lightning's `on_train_start(self, trainer, pl_module)` over `module` ("Parameter 3 name
    # mismatch"), and BaseFinetuning's `finetune_function(self, pl_module, current_epoch, optimizer)`.
    named = [
        p for p in _named_parameters(getattr(owner, name)) if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    assert named and all(p.kind is inspect.Parameter.POSITIONAL_ONLY for p in named), name


def test_a_callbacks_on_train_end_takes_lightnings_form_and_seed_003s():
    from audiotrain.train import Callback
    from audiotrain.train.callbacks import LambdaCallback

    # Seed 003's `on_train_end(self, trainer, state, result)` (README, training_hooks) overrides it too.
    kinds = [p.kind for p in _named_parameters(Callback.on_train_end)]
    assert kinds[-2:] == [inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD]
    assert (
        typing.get_type_hints(Callback.on_train_end)["trainer"] is typing.Any
    )  # (a ConfiguredTrainer there)
    # LambdaCallback still reads the hook's arguments as Lightning's two.
    LambdaCallback(on_train_end=lambda trainer, module: None)
    with pytest.raises(TypeError, match=r"on_train_end\(trainer, module\)"):
        LambdaCallback(on_train_end=lambda trainer: None)


def test_create_trainer_takes_seed_callbacks_and_a_list_of_a_callback_subclass():
    from audiotrain.declarative import ConfiguredTrainer, create_trainer

    # Seed 003's callbacks are any objects with its hooks, and a list[MyCallback] is no list[Callback] to a
    # checker (lists are invariant): a Sequence of anything, as the runtime takes.
    for function in (create_trainer, ConfiguredTrainer.__init__):
        hint = typing.get_type_hints(function)["callbacks"]
        sequence = next(a for a in typing.get_args(hint) if a is not type(None))
        assert typing.get_origin(sequence) is collections.abc.Sequence
        assert typing.Any in typing.get_args(typing.get_args(sequence)[0])


def test_the_per_class_metrics_typed_dict_has_the_keys_and_types_returned():
    from audiotrain.metrics import MetricsTracker, PerClassMetrics, compute_per_class_metrics

    import numpy as np

    returned = compute_per_class_metrics(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), num_classes=3)
    hints = typing.get_type_hints(PerClassMetrics)
    assert set(returned) == set(hints) == PerClassMetrics.__required_keys__
    for key, value in returned.items():
        assert isinstance(value, hints[key]), key  # arrays per class, floats for the summaries
    assert typing.get_type_hints(compute_per_class_metrics)["return"] is PerClassMetrics
    assert typing.get_type_hints(MetricsTracker.per_class_metrics)["return"] is PerClassMetrics


@pytest.mark.parametrize(
    "method, names",
    [
        ("ClapModel.get_text_features", ["input_ids", "attention_mask"]),
        ("ClapModel.get_audio_features", ["input_features", "is_longer"]),
        ("ClapModel.__call__", ["input_features", "input_ids", "attention_mask", "is_longer"]),
        ("CLAP.__call__", ["audio", "input_ids", "attention_mask", "is_longer"]),
    ],
)
def test_clap_takes_numpy_arrays_as_its_annotations_say(method, names):
    # README: they take mx.arrays or the numpy arrays ClapTokenizer and ClapFeatureExtractor return.
    from audiotrain.models import clap

    import numpy as np

    owner, name = method.split(".")
    hints = typing.get_type_hints(getattr(getattr(clap, owner), name))
    for parameter in names:
        assert np.ndarray in typing.get_args(hints[parameter]), parameter


def test_predicts_overloads_return_a_list_or_none_as_return_predictions_says():
    if not hasattr(typing, "get_overloads"):
        pytest.skip("typing.get_overloads is Python 3.11+")
    implementation = inspect.signature(Trainer.predict).parameters
    returns = {}
    for overload in typing.get_overloads(Trainer.predict):
        signature = inspect.signature(overload)
        assert list(signature.parameters) == list(implementation)  # none left out or added
        returns[signature.parameters["return_predictions"].annotation] = signature.return_annotation
    assert returns["Literal[False]"] == "None"
    assert returns["Literal[True] | None | str | os.PathLike"] == "list[Any]"  # the default, True


def _public_classes() -> list[type]:
    """The classes `audiotrain`'s own `__all__` lists, and its subpackages' that users subclass."""
    packages = [
        "audiotrain",
        "audiotrain.train",
        "audiotrain.train.callbacks",
        "audiotrain.train.loggers",
        "audiotrain.data",
        "audiotrain.recipes.chords",
        "audiotrain.models",
    ]
    found: dict[str, type] = {}
    for package in packages:
        module = importlib.import_module(package)
        for name in module.__all__:
            value = getattr(module, name)
            if isinstance(value, type) and value.__module__.startswith("audiotrain"):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return list(found.values())


@pytest.mark.parametrize("cls", _public_classes(), ids=lambda c: c.__qualname__)
def test_an_init_without_parameters_says_it_returns_none(cls):
    # mypy reads `def __init__(self):` as unannotated: under --strict a subclass's `super().__init__()`
    # is "Call to untyped function "__init__" in typed context" (every TrainModule of the README did it).
    init = cls.__dict__.get("__init__")
    if init is None or not inspect.isfunction(init):
        return
    parameters = list(inspect.signature(init).parameters.values())[1:]
    if any(p.annotation is not inspect.Parameter.empty for p in parameters):
        return  # one annotated parameter makes the function typed for mypy
    assert inspect.signature(init).return_annotation is not inspect.Signature.empty, cls


def test_a_logger_annotated_as_lightnings_overrides_log_metrics_and_log_hyperparams():
    # Lightning's Logger takes `metrics: dict[str, float]` and `params: dict[str, Any] | Namespace`: a logger
    # of one's own annotated so (README: "works as there") was refused by mypy --strict as an override
    # of `Mapping[str, Any]` and `Mapping[str, Any] | Namespace`, wider types
    # (tests/typing/logger_overrides.py).
    from audiotrain.train.loggers import Logger

    metrics = typing.get_type_hints(Logger.log_metrics)["metrics"]
    assert typing.get_origin(metrics) is dict and typing.get_args(metrics)[1] is typing.Any
    assert typing.get_type_hints(Logger.log_hyperparams)["params"] is typing.Any


@pytest.mark.parametrize(
    "build, message",
    [
        (
            lambda: TrainingConfig(compile="false"),
            "TrainingConfig.compile must be True or False, got str 'false'",
        ),
        (lambda: TrainingConfig(label_smoothing="0.1"), "TrainingConfig.label_smoothing must be a number"),
        (lambda: TrainingConfig(checkpoint_dir=3), "TrainingConfig.checkpoint_dir must be a path"),
        (lambda: ChordDataConfig(group_pattern=1), "ChordDataConfig.group_pattern must be a string or None"),
        (lambda: ClapRecipeConfig(overwrite="false"), "ClapRecipeConfig.overwrite must be True or False"),
    ],
)
def test_a_setting_of_another_type_from_python_is_refused_naming_it(build, message):
    # A --config file's `compile: "false"` was refused by name, but TrainingConfig(compile="false") was kept,
    # and the text, being true, compiled (overwrite="false" replaced the run folder); label_smoothing="0.1"
    # failed with a bare "'<=' not supported between instances of 'int' and 'str'".
    with pytest.raises(TypeError, match=re.escape(message)):
        build()
    assert TrainingConfig(compile=False, label_smoothing=0, checkpoint_dir=Path("ck")).compile is False


def test_a_function_decorated_rank_zero_only_keeps_its_parameters_for_checkers():
    # `Callable[..., T]` made a decorated `save_plot(path: str)` read as `(*Any, **Any)`: mypy passed
    # `save_plot(3)` and an editor showed no parameters (tests/typing/rank_zero.py). Lightning's takes a
    # ParamSpec.
    from audiotrain import rank_zero_only

    # (an instance, for Lightning's rank_zero_only.rank: its __call__ takes the function)
    taken = typing.get_args(typing.get_type_hints(type(rank_zero_only).__call__)["fn"])[0]
    assert isinstance(taken, typing.ParamSpec)

    @rank_zero_only
    def save_plot(path: str, dpi: int = 100) -> str:
        return f"{path} at {dpi}"

    assert save_plot("loss.png", dpi=200) == "loss.png at 200"  # (one process: rank 0)
    assert list(inspect.signature(save_plot).parameters) == ["path", "dpi"]


@pytest.mark.parametrize("name", ["ClapTokenizer", "ClapFeatureExtractor"])
def test_clap_inputs_are_annotated_as_the_arrays_return_tensors_gives(name):
    # The tokenizer said dict[str, np.ndarray] and the front end a bare dict: under mypy --strict
    # `tokenizer(captions, return_tensors="mlx")["input_ids"]` returned as an mx.array was an error (an
    # ndarray), the front end's was Any (tests/typing/clap_inputs.py).
    from audiotrain.models import clap

    import mlx.core as mx
    import numpy as np

    call = getattr(clap, name).__call__
    returned = typing.get_args(typing.get_type_hints(call)["return"])
    assert set(returned) == {dict[str, np.ndarray], dict[str, mx.array]}
    if name == "ClapTokenizer":
        tokenizer = clap.ClapTokenizer.from_pretrained(ROOT / "tests" / "fixtures" / "clap_tiny")
        inputs = tokenizer(["a dog barks"], return_tensors="mlx")
    else:
        inputs = clap.ClapFeatureExtractor()(
            np.zeros(4800, np.float32), sampling_rate=48000, return_tensors="mlx"
        )
    assert all(isinstance(value, mx.array) for value in inputs.values())
