"""What `help()` shows for the public API a user starts from: every method the README's examples are built
on has a docstring, and a numpy-style "Parameters" section names every parameter."""

import builtins
import importlib
import inspect
import re
import types
import typing

import audiotrain  # noqa: F401  (before mlx)
from audiotrain import DataModule, Trainer, TrainModule
from audiotrain.chords import read_jams
from audiotrain.declarative import create_trainer
from audiotrain.features import chroma_cqt
from audiotrain.train import Callback
from audiotrain.train.callbacks import ModelCheckpoint
from audiotrain.trainer_config import get_trainer_config

import mlx.core as mx
import pytest


@pytest.mark.parametrize(
    "documented",
    [
        TrainModule.compute_loss,
        TrainModule.log_dict,
        DataModule,
        DataModule.train_dataloader,
        DataModule.val_dataloader,
        DataModule.test_dataloader,
        DataModule.predict_dataloader,
        Trainer.log_metrics,
        Trainer.learning_rate,
        ModelCheckpoint.format_name,
        Callback.state_dict,
        Callback.load_state_dict,
    ],
    ids=lambda obj: obj.__qualname__,
)
def test_the_methods_a_first_example_uses_have_a_docstring(documented):
    assert (documented.__doc__ or "").strip()


def _numpy_parameters(doc: str) -> set[str]:
    # As help() shows it: Python 3.13 strips a docstring's common indentation when it compiles it, 3.10-3.12
    # keep it in __doc__, and inspect.cleandoc makes both the same.
    doc = inspect.cleandoc(doc)
    section = doc.split("Parameters\n", 1)[1].split("\n\n", 1)[0] if "Parameters\n" in doc else ""
    names = set()
    for line in section.splitlines():
        if re.match(r"^\w", line) and ":" in line:  # "name : type" or "a, b :"
            names.update(name.strip() for name in line.split(":", 1)[0].split(","))
    return names


@pytest.mark.parametrize("function", [read_jams, chroma_cqt], ids=lambda f: f.__name__)
def test_a_parameters_section_names_every_parameter(function):
    missing = set(inspect.signature(function).parameters) - _numpy_parameters(function.__doc__)
    assert not missing


def test_the_documented_options_are_in_their_docstrings():
    assert "reduce_fx" in TrainModule.log.__doc__
    assert "None" in create_trainer.__doc__.split("config:", 1)[1].split("config_file:", 1)[0]
    assert "None" in get_trainer_config.__doc__


def test_compute_loss_may_be_annotated_as_returning_a_bare_loss():
    """A bare loss works, but the annotation said (loss, metrics) only: a type checker flagged
    `def compute_loss(self, batch) -> mx.array` as an incompatible override."""
    returned = typing.get_type_hints(TrainModule.compute_loss)["return"]
    union = typing.get_origin(returned) in (typing.Union, types.UnionType)
    assert mx.array in (typing.get_args(returned) if union else (returned,))


def test_every_exception_and_warning_the_readme_names_is_importable_from_audiotrain():
    """The README says fit raises KernelCompileError, a save raises CheckpointWriteError, a slow BLAS warns
    SlowBlasWarning...: a user catching or filtering them imports them from the package, not a private module."""
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    named = set(re.findall(r"\b([A-Z][A-Za-z]+(?:Error|Warning|Aborted|NotStarted))\b", readme))
    missing = sorted(name for name in named if not hasattr(builtins, name) and not hasattr(audiotrain, name))
    assert not missing
    assert issubclass(audiotrain.CheckpointWriteError, audiotrain.CheckpointError)


def _documented_callables():
    from audiotrain.callbacks import ReduceLROnPlateau
    from audiotrain.declarative import ConfiguredTrainer
    from audiotrain.features import FeatureCache
    from audiotrain.kaggle import create_kaggle_trainer
    from audiotrain.models import ChordRecognitionLoss

    return [
        (ModelCheckpoint, ModelCheckpoint.__init__),
        (ConfiguredTrainer.train_with_cv, ConfiguredTrainer.train_with_cv),
        (ChordRecognitionLoss, ChordRecognitionLoss.__init__),
        # ReduceLROnPlateau's verbose and mode, FeatureCache's unwritable_advice, the factories' module,
        # test_dataloader and callbacks were in the signature only.
        (ReduceLROnPlateau, ReduceLROnPlateau.__init__),
        (FeatureCache, FeatureCache.__init__),
        (create_trainer, create_trainer),
        (create_kaggle_trainer, create_kaggle_trainer),
    ]


@pytest.mark.parametrize(
    "owner, function", _documented_callables(), ids=lambda x: getattr(x, "__qualname__", "")
)
def test_every_parameter_of_these_documented_callables_is_in_its_docstring(owner, function):
    # help() is what a notebook user reads: an accepted argument left out of the Args (ModelCheckpoint's
    # verbose, train_with_cv's log, the loss's chord_weight) was found only in the source.
    names = [n for n in inspect.signature(function).parameters if n not in ("self", "lightning_args")]
    missing = [n for n in names if not re.search(rf"\b{n}\b", owner.__doc__ or "")]
    assert not missing


def test_the_dtype_notes_of_the_features_and_the_loader_say_what_they_return():
    from audiotrain.data import DataLoader
    from audiotrain.data.collate import to_mlx
    from audiotrain.features import melspectrogram, stft

    import numpy as np

    # float64 input keeps float64 only with backend='numpy' (the docstrings said so for any numpy input).
    y = np.random.default_rng(0).standard_normal(4096)
    assert (
        stft(y, n_fft=256).dtype == mx.complex64
        and stft(y, n_fft=256, backend="numpy").dtype == np.complex128
    )
    assert "with backend='numpy'" in stft.__doc__ and "with backend='numpy'" in melspectrogram.__doc__
    # uint64 is narrowed to uint32 too.
    assert to_mlx(np.arange(3, dtype=np.uint64)).dtype == mx.uint32
    assert "uint64 -> uint32" in " ".join(to_mlx.__doc__.split()) and "uint64 -> uint32" in " ".join(
        DataLoader.__doc__.split()
    )


def test_every_docstring_of_the_package_is_text_help_can_print():
    """A docstring that wrote a surrogate-escaped file name as ``\\udcc3`` in a plain string held lone
    surrogates: help() failed to print it ('surrogates not allowed'), and Python 3.13, which cleans
    docstrings when it compiles them, refused to import the module (audiotrain.recipes.chords.train)."""
    import ast
    from pathlib import Path

    package = Path(audiotrain.__file__).parent
    unprintable = []
    for source in sorted(package.rglob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node, clean=False) or ""
                try:
                    doc.encode("utf-8")
                except UnicodeEncodeError:
                    unprintable.append(f"{source.relative_to(package)}:{getattr(node, 'lineno', 1)}")
    assert not unprintable


def test_the_readme_trainer_example_runs_as_written(tmp_path, monkeypatch):
    """ "The trainer in one example" fitted `train_loader` and `val_loader` without defining them: pasted as
    written it stopped at a NameError, the first thing a newcomer runs."""
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    example = (
        readme.split("## The trainer in one example", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    )
    monkeypatch.chdir(tmp_path)  # (it writes logs/ and history.json where it runs)
    namespace: dict = {}
    # Its second fit's "nothing to train" is a PossibleUserWarning, which a strict suite ignores by category
    # (README's `ignore::audiotrain.PossibleUserWarning`): a plain UserWarning failed the example there
    import audiotrain

    with pytest.warns(audiotrain.PossibleUserWarning, match="nothing to train"):
        exec(compile(example, "README.md", "exec"), namespace)
    assert (tmp_path / "history.json").is_file()
    assert namespace["trainer"].checkpoint_callback.last_model_path == str(tmp_path / "logs/checkpoints/last")


def _modules_with_all() -> list[str]:
    from pathlib import Path

    package = Path(audiotrain.__file__).parent
    return sorted(
        ".".join(("audiotrain", *source.relative_to(package).with_suffix("").parts)).removesuffix(".__init__")
        for source in package.rglob("*.py")
        if "\n__all__" in "\n" + source.read_text(encoding="utf-8")
    )


@pytest.mark.parametrize("module_name", _modules_with_all())
def test_every_function_and_class_a_module_exports_has_a_docstring(module_name):
    """help(audiotrain.recipes.clap.cli.export_main) and help(...build_export_parser), both in its
    __all__, showed a bare signature: neither said what it takes or returns (the chord recipe's twins do)."""
    import importlib

    module = importlib.import_module(module_name)
    bare = [
        name
        for name in module.__all__
        if (inspect.isfunction(obj := getattr(module, name)) or inspect.isclass(obj))
        # (a class's own: one it inherits tells what its base is, not what it is)
        and not ((vars(obj).get("__doc__") if inspect.isclass(obj) else obj.__doc__) or "").strip()
    ]
    assert not bare, f"{module_name}: {bare}"


def test_the_readme_layout_names_the_files_of_the_classes_a_task_subclasses():
    """A contributor looking for TrainModule or the Callback base class in the README's Layout found
    trainer.py and every callback's file, but not module.py or callback.py, where the hooks they override
    are."""
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    layout = readme.split("\n## Layout\n", 1)[1].split("\n```\n", 2)[1]
    for cls in (TrainModule, Trainer, Callback, audiotrain.OptimizerConfig):
        file = Path(inspect.getfile(cls)).name
        assert f" {file}:" in layout or f"({file}:" in layout, (cls.__name__, file)


def test_the_readmes_container_paragraph_names_each_recipes_run_folder_flag():
    """'In a container or a batch job' named --run_dir alone for the run folder, and its one-mount setup
    `--run_dir /out/run`, which the CLAP recipe refuses ('did you mean --out?')."""
    from pathlib import Path

    from audiotrain.recipes.clap.cli import OTHER_RECIPES_NAMES

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    paragraph = readme.split("**In a container or a batch job", 1)[1].split("\n\n", 1)[0]
    clap_flag = OTHER_RECIPES_NAMES["--run_dir"]  # (the CLAP recipe's name for the chord recipe's flag)
    assert f"`{clap_flag}`" in paragraph and f"`{clap_flag} /out/run`" in paragraph, paragraph


def test_the_readmes_ensemble_and_live_input_notes_call_what_the_predictor_takes():
    """The ensemble note builds `SongPosteriors(probs, ...)`, which only `audiotrain.recipes.chords.predict`
    held (the recipe's package exports the predictor); the live-input note gave `tta_shifts=(0,)` beside
    `transcribe`, which refuses it ('unexpected keyword argument'): it is the predictor's setting."""
    from pathlib import Path

    from audiotrain.recipes.chords import ChordPredictor, SongPosteriors

    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    live = readme.split("- Live input has no streaming call", 1)[1].split(" - ", 1)[0]
    call = "ChordPredictor.from_checkpoint(run, tta_shifts=(0,))"
    assert f"`{call}`" in live, live
    assert "tta_shifts" in inspect.signature(ChordPredictor.__init__).parameters
    assert "tta_shifts" not in inspect.signature(ChordPredictor.transcribe).parameters
    ensemble = readme.split("- An ensemble of runs", 1)[1].split(" - ", 1)[0]
    assert "`from audiotrain.recipes.chords import SongPosteriors`" in ensemble
    fields = ["probs", "frame_rate", "duration", "level_db"]
    assert list(inspect.signature(SongPosteriors).parameters)[:4] == fields


def test_the_docstring_examples_that_run_as_written_still_do():
    """The public names' >>> examples a user can paste as they are (no model or data of theirs needed)."""
    import doctest

    from audiotrain.audio import SkipCounter

    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    for documented in (get_trainer_config, SkipCounter):
        examples = [found for found in doctest.DocTestFinder().find(documented, globs={}) if found.examples]
        assert examples, documented
        for example in examples:
            example.globs = vars(importlib.import_module(documented.__module__)).copy()
            runner = doctest.DocTestRunner(optionflags=flags)
            runner.run(example)
            results = runner.summarize(verbose=False)
            assert results.attempted and not results.failed, example.name
