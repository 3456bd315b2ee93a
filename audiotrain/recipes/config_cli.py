"""Dataclass configs ↔ command-line flags and YAML, so a recipe's config is written down once.

Each field of a (possibly nested) dataclass becomes a flag: ``--learning_rate 3e-4`` for a top-level
field, ``--model.d_model 192`` for a field of a nested section. The help text is the field's
``metadata["help"]`` (or the section's docstring line). A YAML or JSON file fills the same tree
(`load_config_file`), and flags override it.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import functools
import json
import math
import numbers
import os
import re
import reprlib
import shutil
import sys
import types
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from audiotrain._file_names import local_name
from audiotrain._files import (
    STORAGE_ERRNOS,
    UTF16_TEXT,
    NotReplaceableError,
    OutputWriteError,
    is_utf16,
    parse_json,
)

# (Their home before: the recipes and users import them from here.)
from audiotrain._help_text import STOP_EXIT_STATUSES as STOP_EXIT_STATUSES
from audiotrain._help_text import exit_status_help as exit_status_help
from audiotrain._help_text import help_text as help_text
from audiotrain._invocation import as_started
from audiotrain._system import KernelCompileError
from audiotrain._yaml import MAX_YAML_VALUES, parse_yaml
from audiotrain.audio import AudioError
from audiotrain.distributed.collectives import LauncherEnvironmentError
from audiotrain.models.clap.torch_bin import UnsafeCheckpointError
from audiotrain.train import checkpoint as ckpt
from audiotrain.train.callback import Callback
from audiotrain.train.memory import training_memory_limit  # (the Trainer refuses by it too)
from audiotrain.train.seeding import SEED_MAX  # (the largest seed a recipe takes, as the Trainer)

_SCALARS = (bool, int, float, str)

#: How an error message shows a value: a few items and characters of it. A YAML alias tree shares its lists, so
#: a 1 KB file can hold a value whose full repr has billions of items.
_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxlist, _SHOWN.maxtuple, _SHOWN.maxdict = 3, 8, 8, 8
_SHOWN.maxstring = _SHOWN.maxother = _SHOWN.maxlong = 80


def shown(value: Any, limit: int = 120) -> str:
    """``repr(value)`` for an error message, cut to a few items (``[[1, 2, ...], ...]``) and `limit` characters."""
    text = _SHOWN.repr(value)
    return text if len(text) <= limit else f"{text[:limit]}..."


def _field_type(cls: type, field: dataclasses.Field) -> Any:
    hints = typing.get_type_hints(cls)
    return hints.get(field.name, field.type)


def _scalar_type(annotation: Any) -> tuple[type | None, bool]:
    """(scalar type, optional) for `int`, `float | None`, ...; (None, False) for anything else."""
    if annotation in _SCALARS:
        return annotation, False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and args[0] in _SCALARS and len(typing.get_args(annotation)) == 2:
            return args[0], True
    return None, False


def _sequence_type(annotation: Any) -> tuple[type | None, bool]:
    """(element type, optional) for `tuple[str, ...]`, `tuple[float, ...] | None`, ...; (None, False) else."""
    optional = False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1 or len(typing.get_args(annotation)) != 2:
            return None, False
        annotation, optional = args[0], True
    args = typing.get_args(annotation)
    if (
        typing.get_origin(annotation) is tuple
        and len(args) == 2
        and args[1] is Ellipsis
        and args[0] in _SCALARS
    ):
        return args[0], optional
    return None, False


_TRUE_WORDS, _FALSE_WORDS = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE_WORDS:
        return True
    if lowered in _FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _is_bool_word(text: str) -> bool:
    return text.strip().lower() in _TRUE_WORDS + _FALSE_WORDS


def add_overwrite_argument(parser: argparse.ArgumentParser, help: str, default: Any = False) -> None:
    """``--overwrite``, as every command of both recipes takes it: alone, or with a true/false value
    (``--overwrite false``, ``--overwrite=true``), for a script that writes one form for all."""
    parser.add_argument(
        "--overwrite", dest="overwrite", nargs="?", const=True, type=parse_bool, default=default, help=help
    )


def resume_or_overwrite(resume: Any, overwrite: bool, run: str = "the run") -> str | None:
    """The refusal of ``--resume`` beside ``--overwrite`` (None where not both are given), the same in every
    command of both recipes: the train and demo commands (and CLAP) let the resume win without a word, so
    that a user who meant to replace the run found it continued."""
    if not resume or not overwrite:
        return None
    return f"--resume continues {run} in its folder and --overwrite replaces it; give one"


def without_overwrite(argv: Sequence[str]) -> list[str]:
    """`argv` less ``--overwrite`` and its value, where it has one (`add_overwrite_argument`)."""
    kept: list[str] = []
    skip_value = False
    for arg in argv:
        if skip_value and _is_bool_word(arg):
            skip_value = False
            continue
        skip_value = arg == "--overwrite"
        if arg.partition("=")[0] != "--overwrite":
            kept.append(arg)
    return kept


def home_expanded(path: str | os.PathLike) -> str:
    """`path` as text with a leading ``~`` (or ``~user``) made the home folder, as
    ``Trainer(default_root_dir=)`` and ``ModelCheckpoint`` take it. The shell expands ``~`` only at the start
    of a word, so ``--run_dir=~/runs/x`` reached the recipes as it is: its run folder became a literal
    ``./~/runs/x`` while its checkpoints went to ``$HOME/runs/x``. Every path flag and path setting goes
    through here. Its name is spelt as this process's file names are (`local_name`): a ``--config`` file's
    UTF-8 text naming ``Músicas`` was, in an ASCII locale (a cron job), no such folder, or a bare
    "'ascii' codec can't encode" error; a flag, already so spelt, is unchanged."""
    return os.path.expanduser(local_name(os.fspath(path)))


def _converter(kind: type, optional: bool, path: bool = False):
    base = parse_bool if kind is bool else home_expanded if path else kind

    def convert(text: str):
        if optional and text.strip().lower() in ("none", "null"):
            return None
        return base(text)

    convert.__name__ = kind.__name__  # argparse names the type in its error messages
    return convert


def _sequence_converter(kind: type, optional: bool):
    """Comma-separated text → a tuple of `kind` (brackets allowed: ``[train,studio]``); none/null → None."""
    element = _converter(kind, False)

    def convert(text: str):
        stripped = text.strip()
        if optional and stripped.lower() in ("none", "null"):
            return None
        if stripped.startswith("[") and stripped.endswith("]"):
            stripped = stripped[1:-1]
        return tuple(element(part) for part in stripped.split(",") if part.strip())

    convert.__name__ = f"comma-separated {kind.__name__}"
    return convert


def add_dataclass_arguments(
    parser: argparse.ArgumentParser,
    config: Any,
    prefix: str = "",
    skip: frozenset[str] = frozenset(),
    help_texts: dict[str, str] | None = None,
    choices: dict[str, tuple] | None = None,
) -> None:
    """Add one flag per scalar field of the dataclass instance `config` (recursing into nested sections).

    Defaults shown in the help are the values of `config`; parsed values default to `argparse.SUPPRESS`,
    so only flags the user gave appear in the namespace (see `apply_arguments`). A field whose metadata has
    ``section_flag`` is also the section's own flag (``--logger csv,mlflow`` for ``--logger.names``). `skip` names dotted fields
    that get no flag (derived values); `help_texts` gives help for fields without ``metadata["help"]``, and
    `choices` the allowed values of fields without ``metadata["choices"]`` (listed in the help).
    """
    help_texts = help_texts or {}
    choices_for = choices or {}
    group = parser.add_argument_group(f"{prefix.rstrip('.')} settings") if prefix else parser
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        name = f"{prefix}{field.name}"
        if name in skip:
            continue
        if dataclasses.is_dataclass(value):
            add_dataclass_arguments(parser, value, f"{name}.", skip, help_texts, choices_for)
            continue
        kind, optional = _scalar_type(_field_type(type(config), field))
        is_path = kind is str and bool(field.metadata.get("path"))
        convert = _converter(kind, optional, is_path) if kind is not None else None
        metavar = kind.__name__.upper() if kind is not None else None
        if kind is None:  # a tuple of scalars: a comma-separated flag (--data.demo_styles train,studio)
            kind, optional = _sequence_type(_field_type(type(config), field))
            if kind is None:
                continue
            convert, metavar = _sequence_converter(kind, optional), f"{kind.__name__.upper()},..."
        help_text = field.metadata.get("help", help_texts.get(name, ""))
        allowed = field.metadata.get("choices", choices_for.get(name))
        flags = [f"--{name}"]
        if field.metadata.get("section_flag") and prefix:  # also set by the section's own name
            flags.insert(0, f"--{prefix.rstrip('.')}")
        group.add_argument(
            *flags,
            dest=name,
            type=convert,
            default=argparse.SUPPRESS,
            choices=allowed,
            metavar=metavar if allowed is None else None,
            help=f"{help_text} (default: {_as_flag_text(value)})".strip(),
        )


def _as_flag_text(value: Any) -> str:
    """A default as the help shows it: a tuple as the comma-separated text its flag takes."""
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value) if value else "(none)"
    return repr(value)


def apply_arguments(config: Any, namespace: argparse.Namespace) -> Any:
    """A copy of `config` with every dotted flag present in `namespace` applied (re-validating sections)."""
    overrides: dict[str, Any] = {}
    for key, value in vars(namespace).items():
        if "." in key or any(f.name == key for f in dataclasses.fields(config)):
            overrides[key] = value
    return merge_config(config, _nest(overrides), source="command line")


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        node = nested
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def merge_config(config: Any, data: dict[str, Any], source: str, path: str = "") -> Any:
    """A copy of dataclass `config` with the values in the (nested) dict `data`.

    Unknown keys and wrongly typed values raise ValueError naming `source` and the dotted field.
    """
    if not isinstance(data, dict):
        where = f"field {path.rstrip('.')!r}" if path else "the config"
        # (YAML reads a section whose lines are all commented out as null)
        got = (
            "nothing (an empty section: give it settings, or remove it)"
            if data is None
            else type(data).__name__
        )
        # A section that is also a flag (`--logger csv`) is written in a file with its field's name.
        flagged = [f.name for f in dataclasses.fields(config) if f.metadata.get("section_flag")]
        if path and flagged and isinstance(data, str):
            section = path.rstrip(".")
            name = f"{section}.{flagged[0]}"
            got += f" ({data!r}; --{section} {data} is {name} in a file: {section}: {{{flagged[0]}: ...}})"
        raise ValueError(f"{source}: {where} must be a mapping of fields, got {got}")
    names = {f.name: f for f in dataclasses.fields(config)}
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            # PyYAML reads a bare 1, true, yes, on or null as a number, a boolean or None, not as a name.
            place = f"in section {path.rstrip('.')!r}" if path else "at the top level"
            kind = {bool: "a boolean", int: "a number", float: "a number", type(None): "null"}.get(
                type(key), f"a {type(key).__name__}"
            )
            raise ValueError(
                f"{source}: unknown field {key!r} {place}: {kind}, not a name (YAML reads a bare 1, true, yes, "
                f"on or null as a value); expected one of {sorted(names)}"
            )
        where = f"{path}{key}"
        if key not in names:
            section, dot, field = key.partition(".")
            if dot and section in names and dataclasses.is_dataclass(getattr(config, section)):
                # A flag's dotted name (`model.d_model: 32`) is no key of a file, which nests it under its
                # section: "unknown field 'model.d_model'" read as if the setting did not exist. (A misspelt
                # one is refused nested first, with its "did you mean".)
                merge_config(getattr(config, section), {field: value}, source, path=f"{path}{section}.")
                raise ValueError(
                    f"{source}: field {where!r} is written nested in a file, under its section: "
                    f"{path}{section}: {{{field}: {value!r}}} ({section}: on one line, then {field}: ... "
                    "indented below it); the dotted name is the command line's"
                )
            close = difflib.get_close_matches(key, names, n=1)
            if OTHER_LIBRARIES_NAMES.get(key) in names:
                close = [OTHER_LIBRARIES_NAMES[key]]
            hint = f"; did you mean {path + close[0]!r}?" if close else ""
            # A section's setting at this level (`data_dir: songs`): its section's name was the close match.
            # (or another library's name of one: clap's `lr: 0.1` is task.learning_rate)
            meant = key if key in _nested_names(config) else OTHER_LIBRARIES_NAMES.get(key, key)
            nested = [
                f"{path}{name}.{meant}"
                for name in sorted(names)
                if dataclasses.is_dataclass(section := getattr(config, name))
                and meant in {inner.name for inner in dataclasses.fields(section)}
            ]
            if nested:
                hint = f"; did you mean {' or '.join(map(repr, nested))}? (a file nests it under its section)"
            raise ValueError(f"{source}: unknown field {where!r}{hint} (expected one of {sorted(names)})")
        current = getattr(config, key)
        if dataclasses.is_dataclass(current):
            changes[key] = merge_config(current, value, source, path=f"{where}.")
            continue
        kind, optional = _scalar_type(_field_type(type(config), names[key]))
        element, element_optional = _sequence_type(_field_type(type(config), names[key]))
        metadata = names[key].metadata
        if kind is str and metadata.get("path") and isinstance(value, (str, os.PathLike)):
            # A pathlib.Path from Python is kept as the text a YAML file would hold; ~ is the home folder.
            value = home_expanded(value)
        elif kind is str and metadata.get("number_as_text") and type(value) is int:
            value = str(value)  # YAML reads `precision: 32` as an int; the setting is the text its flag takes
        elif kind is str and metadata.get("bool_as_text") and isinstance(value, bool):
            value = str(value).lower()  # YAML reads `log_model: false` as a bool; its flag takes the text
        elif kind is str and metadata.get("comma_separated") and isinstance(value, (list, tuple)):
            if not all(isinstance(item, str) for item in value):
                raise ValueError(f"{source}: field {where!r} must be a list of str, got {shown(value)}")
            value = ",".join(value)  # a YAML list, as the flag's comma-separated text
        if element is not None and not (value is None and element_optional):
            changes[key] = _sequence_value(value, element, f"{source}: field {where!r}")
        elif value is None and (optional or current is None):
            changes[key] = None
        elif kind is float and isinstance(value, int) and not isinstance(value, bool):
            if not -sys.float_info.max <= value <= sys.float_info.max:  # (float() raises OverflowError)
                raise ValueError(f"{source}: field {where!r} must be a finite float, got {shown(value)}")
            changes[key] = float(value)
        elif kind in (int, float) and isinstance(value, str) and _parses_as(kind, value):
            # YAML 1.1 (PyYAML) reads `1e-3` (no dot) as the string "1e-3": take it as the number it spells.
            changes[key] = kind(value.strip())
        elif kind is not None and not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValueError(f"{source}: field {where!r} must be {kind.__name__}, got {shown(value)}")
        else:
            changes[key] = value
    # A section whose defaults follow one of its settings (`ChordFeatureConfig.settings_following`) adds them.
    following = getattr(type(config), "settings_following", None)
    if following is not None:
        changes = following(config, changes)
    try:
        return dataclasses.replace(config, **changes)
    except SettingError as err:  # a section names its own fields; here its place in the tree is known
        raise ValueError(f"{source}: {err.within(path)}") from None
    except (TypeError, ValueError) as err:
        message = _named_as_flag(str(err), config, path)
        raise ValueError(
            f"{source}: {message}{_which_were_set(message, config, changes, source, path)}"
        ) from None
    except (MemoryError, OverflowError) as err:  # a size no check bounds yet: a setting, not a traceback
        section = f" in section {path.rstrip('.')!r}" if path else ""
        raise ValueError(
            f"{source}: a setting{section} is too large to build ({type(err).__name__}: {err}); "
            f"it was given {shown(changes)}"
        ) from None


def _nested_names(config: Any) -> set[str]:
    """The names of the fields of `config`'s sections (its dataclass fields)."""
    return {
        inner.name
        for field in dataclasses.fields(config)
        if dataclasses.is_dataclass(section := getattr(config, field.name))
        for inner in dataclasses.fields(section)
    }


#: The help of every recipe's ``--progress_bar``: which output a terminal, a log and a screen reader get.
PROGRESS_BAR_HELP = (
    "show progress: a live bar in a terminal (training in one process), else one line per epoch (a log, a "
    "pipe, TERM=dumb: lines, not redraws, in a terminal too, as a screen reader wants); false: neither"
)


#: Other libraries' names of a setting (Hugging Face's TrainingArguments, Lightning's Trainer, PyTorch) and a
#: search script's short names, which a user adapting their script tries first and which difflib matches to
#: the wrong setting (`gradient_accumulation_steps` to `gradient_clip`, `--lr` to `--logger`) or to none
#: (`lr`, `bs`). One table for a --config file's keys, create_trainer's and TrainingConfig's keywords, and the
#: recipes' flags (`SettingsParser._close_flag`).
OTHER_LIBRARIES_NAMES = {
    "gradient_accumulation_steps": "accumulate_grad_batches",
    "grad_accum_steps": "accumulate_grad_batches",
    "accumulation_steps": "accumulate_grad_batches",
    "max_grad_norm": "gradient_clip",
    "gradient_clip_val": "gradient_clip",
    "clip_grad_norm": "gradient_clip",
    "lr": "learning_rate",
    "wd": "weight_decay",
    "bs": "batch_size",
    "fp16": "precision",
    "bf16": "precision",
    "per_device_train_batch_size": "batch_size",
    "train_batch_size": "batch_size",
    "max_epochs": "num_epochs",
    "num_train_epochs": "num_epochs",
}


def settle_fields(config: Any) -> None:
    """Give a recipe config built in Python what a --config file or a flag would give it (its
    `__post_init__` calls this first): a `pathlib.Path` in a path field becomes its text, which config.json
    and checkpoints record as JSON; a section given as a dict (``TrainingConfig(data={...})``) becomes the
    section's dataclass, read as a --config file's section (unknown keys named). Anything else in a
    section's place is refused naming the field: it used to fail deep in the run, after the run folder."""
    owner = type(config).__name__
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.metadata.get("path") and isinstance(value, os.PathLike):
            setattr(config, field.name, os.fspath(value))
            continue
        _refuse_another_type(owner, field, hints.get(field.name, field.type), value)
        if field.default_factory is dataclasses.MISSING or dataclasses.is_dataclass(value):
            continue
        default = field.default_factory()
        if not dataclasses.is_dataclass(default):
            continue
        if isinstance(value, Mapping):
            source = f"{owner}({field.name}=...)"
            setattr(config, field.name, merge_config(default, dict(value), source, path=f"{field.name}."))
        else:
            raise TypeError(
                f"{owner}.{field.name}: expected a {type(default).__name__} (or a dict of its fields), "
                f"got {type(value).__name__} {shown(value)}"
            )


def _refuse_another_type(owner: str, field: dataclasses.Field, annotation: Any, value: Any) -> None:
    """Refuse a bool, int, float or str setting given another type from Python, naming it: a --config file
    and a flag are typed by `merge_config`, but `TrainingConfig(compile="false")` was kept, and the text,
    being true, compiled (`ClapRecipeConfig(overwrite="false")` replaced the run folder)."""
    kind, optional = _scalar_type(annotation)
    if kind is None or (value is None and optional):
        return
    if kind is str and any(
        field.metadata.get(k) for k in ("number_as_text", "bool_as_text", "comma_separated")
    ):
        return  # (an int, a bool or a list there is taken as its text, as merge_config takes it)
    truth = isinstance(value, bool) or type(value).__name__ in (
        "bool_",
        "bool",
    )  # (numpy's: np.bool_, np.bool)
    if kind is bool:
        fits = truth
    elif kind is str:
        fits = isinstance(value, str)
    else:  # text only: a section's `check_setting` names the range where it is given None or 2.5
        fits = not isinstance(value, (str, bytes))
    if not fits:
        expected = {bool: "True or False", int: "an integer", float: "a number", str: "a string"}[kind]
        expected = "a path (a str or a pathlib.Path)" if field.metadata.get("path") else expected
        raise TypeError(
            f"{owner}.{field.name} must be {expected}{' or None' if optional else ''}, "
            f"got {type(value).__name__} {shown(value)}"
        )


def _named_as_flag(message: str, config: Any, path: str) -> str:
    """A section's own check names a field as ``ClassName.field`` (``DecodeConfig.self_transition``: it
    may live outside the recipes); in the tree at `path` it is a --config key and a flag."""
    name, dot, rest = message.partition(" ")[0].partition(".")
    field = rest.rstrip(":,;")
    if name != type(config).__name__ or not dot or "(--" in message:
        return message
    if field not in {f.name for f in dataclasses.fields(config)}:
        return message
    return f"{path}{field} (--{path}{field}){message[len(name) + 1 + len(field) :]}"


def _which_were_set(message: str, config: Any, changes: dict[str, Any], source: str, path: str) -> str:
    """`` (you set --features.n_bins 3; features.bass_view_bins is 108, the default)`` where `message` (a
    section's check of two of its fields against each other) names fields `source` set and fields it did
    not: the check names the field it tests, which may be the one the user never set."""
    # A field counts as named as a flag (--features.sr), a key (features.sr) or "sr = 22050"; a bare word
    # alone does not (a top-level field such as "model" or "data" is also an ordinary word).
    prefix = rf"(?:--)?{re.escape(path)}" if path else "--"
    named = [
        f.name
        for f in dataclasses.fields(config)
        if re.search(
            rf"(?<![\w.-])(?:{prefix}{re.escape(f.name)}(?!\w)|{re.escape(f.name)}(?=\s*=))", message
        )
    ]
    given = [name for name in named if name in changes]
    others = [name for name in named if name not in changes]
    if not given or not others:
        return ""
    on_line = source == "command line"
    said = [
        f"--{path}{name} {shown(changes[name])}" if on_line else f"{path}{name}: {shown(changes[name])}"
        for name in given
    ]
    fields = {f.name: f for f in dataclasses.fields(config)}
    unset = []
    for name in others:
        value, field = getattr(config, name), fields[name]
        default = (
            field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        )
        origin = (
            "the default" if value == default else f"not set {'on the command line' if on_line else 'there'}"
        )
        unset.append(f"{path}{name} is {shown(value)}, {origin}")
    where = "" if on_line else f" in {source}"
    return f" (you set {', '.join(said)}{where}; {'; '.join(unset)})"


def _sequence_value(value: Any, kind: type, where: str) -> tuple:
    """A list (YAML, JSON), tuple (a flag) or comma-separated string as a tuple of `kind`."""
    if isinstance(value, str):
        try:
            return _sequence_converter(kind, False)(value)
        except (ValueError, argparse.ArgumentTypeError):
            raise ValueError(f"{where} must be a list of {kind.__name__}, got {shown(value)}") from None
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{where} must be a list of {kind.__name__}, got {shown(value)}")
    items = []
    for item in value:
        if kind is float and isinstance(item, int) and not isinstance(item, bool):
            item = float(item)
        if not isinstance(item, kind) or (kind is not bool and isinstance(item, bool)):
            raise ValueError(f"{where} must be a list of {kind.__name__}, got {shown(value)}")
        items.append(item)
    return tuple(items)


# Upper bounds of the recipes' counts: far above any real run, so that only a slip (extra zeros, 2**70) meets
# them, refused when the config is built rather than after the run folder is written, by a crash deep in
# numpy or MLX (a schedule of 2**70 steps fails in MLX's int32 step arithmetic; 10**12 workers ran out of
# memory making their queues, then hung).
#: Most epochs (num_epochs, train.epochs; save_every and patience count them too).
MAX_EPOCHS = 100_000
#: Most optimizer steps (train.max_steps, task.total_steps, warmup, logging intervals): MLX's steps are int32.
MAX_STEPS = 10**9
#: Most examples in a batch (batch sizes, gradient accumulation).
MAX_BATCH_SIZE = 65_536
#: Most data-loading workers (threads or processes).
MAX_WORKERS = 256
#: Most songs or clips a recipe's generated demo data may hold (1024 is the chord benchmark's).
MAX_DEMO_ITEMS = 100_000


class SettingError(ValueError):
    """A setting out of its range. Raised by a config section's checks with the field's own name; `merge_config`
    (which knows the section's place: ``train.``) names it as a --config key and a flag (``--train.seed``)."""

    def __init__(self, name: str, value: Any, expected: str):
        self.name, self.value, self.expected = name, value, expected
        super().__init__(f"{name} must be {expected}, got {shown(value)}")

    def within(self, section: str) -> str:
        name = f"{section}{self.name}"
        return f"{name} (--{name}) must be {self.expected}, got {shown(self.value)}"


def check_setting(
    name: str,
    value: Any,
    *,
    integer: bool = False,
    at_least: float | None = None,
    above: float | None = None,
    at_most: float | None = None,
    below: float | None = None,
    optional: bool = False,
    why: str = "",
) -> None:
    """Raise `SettingError` unless `value` is a finite number (an integer if `integer`) in the given bounds, or
    None when `optional`. `why` is added to the expectation (what the bound is for)."""
    if value is None and optional:
        return
    bounds = [
        (at_least, ">=", lambda v, b: v >= b),
        (above, ">", lambda v, b: v > b),
        (at_most, "<=", lambda v, b: v <= b),
        (below, "<", lambda v, b: v < b),
    ]
    kind = numbers.Integral if integer else numbers.Real
    # (An int is finite; math.isfinite would raise OverflowError for one past a float's range, 10**400.)
    ok = isinstance(value, kind) and not isinstance(value, bool)
    ok = ok and (isinstance(value, numbers.Integral) or math.isfinite(value))
    ok = ok and all(bound is None or holds(value, bound) for bound, _, holds in bounds)
    if not ok:
        shown = [
            f"{sign} {'2**63 - 1' if bound == SEED_MAX else bound}"
            for bound, sign, _ in bounds
            if bound is not None
        ]
        expected = ("an integer" if integer else "a finite number") + (
            f" {' and '.join(shown)}" if shown else ""
        )
        expected += (f" ({why})" if why else "") + (", or none" if optional else "")
        raise SettingError(name, value, expected)


#: Bytes per parameter while training in float32: the weights, their gradients and AdamW's two moments.
TRAINING_BYTES_PER_PARAMETER = 16


def check_fits_memory(
    model: Any, sized_by: str, processes: int = 1, processes_flag: str = "--processes"
) -> None:
    """Refuse a `model` whose training needs more memory than this process may use (`training_memory_limit`),
    naming `sized_by` (the flags that size it): MLX ends the process with a segmentation fault when an
    allocation fails. Counts only the weights, gradients and optimizer moments (activations come on top), so
    what it refuses could never train. With `processes` > 1 (the recipe's local processes on this machine,
    each training its own copy of the model) the need is that many copies, against the same machine's memory,
    and where one copy would fit the message names `processes_flag`. Costs nothing: MLX builds `model`
    lazily, drawing no weights until they are evaluated (it does advance the global random key: seed after
    it)."""
    from mlx.utils import tree_flatten

    count = sum(p.size for _, p in tree_flatten(model.parameters()))
    one_copy = count * TRAINING_BYTES_PER_PARAMETER
    need = one_copy * processes
    limit, what = training_memory_limit()
    if need <= limit:
        return
    if processes == 1:
        raise ValueError(
            f"{sized_by}: a model of {count:,} parameters, whose training needs {need / 1e9:.1f} GB for its "
            f"weights, gradients and AdamW's two moments alone, more than the {limit / 1e9:.1f} GB {what}; "
            "choose a smaller model"
        )
    fewer = max(1, int(limit // one_copy)) if one_copy <= limit else None
    remedy = (
        f"pass {processes_flag} {fewer}{' (or fewer)' if fewer > 1 else ''}, or choose a smaller model"
        if fewer is not None
        else "choose a smaller model (one copy alone does not fit)"
    )
    raise ValueError(
        f"{sized_by}: a model of {count:,} parameters, whose training needs {one_copy / 1e9:.1f} GB for its "
        f"weights, gradients and AdamW's two moments alone in each of the {processes} processes training on "
        f"this machine (one copy each: {need / 1e9:.1f} GB), more than the {limit / 1e9:.1f} GB {what}; "
        f"{remedy}"
    )


def _parses_as(kind: type, text: str) -> bool:
    try:
        kind(text.strip())
    except ValueError:
        return False
    return True


#: The suffixes a config file may have; a file without one is read as YAML (which reads JSON too).
CONFIG_SUFFIXES = (".yaml", ".yml", ".json")


def load_config_data(path: str | Path) -> Any:
    """The nested data of a YAML (.yaml/.yml or no suffix, read by `audiotrain._yaml.parse_yaml`: safe types
    only) or JSON (.json) file.

    A file without settings (empty, or only YAML comments) is an empty mapping, whatever its suffix: it
    changes nothing. Any other suffix is an error naming the supported ones.
    """
    path = Path(path).expanduser()  # (~ is the home folder, as in every other path setting)
    if path.is_dir():
        records = ("config.yaml", "config.json", "cv_progress.json", "trainer_state.json")
        inside = [n for n in records if (path / n).is_file()]
        hint = f"; pass the file in it: {path / inside[0]}" if inside else ""
        raise FileNotFoundError(f"config file {path} is a folder, not a file{hint}")
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix and suffix not in CONFIG_SUFFIXES:
        raise ValueError(
            f"config file {path}: unknown suffix {path.suffix!r}; a config file is YAML (.yaml, .yml) or "
            "JSON (.json)"
        )
    try:
        # (utf-8-sig: a byte order mark, as Windows editors and PowerShell write one, is no part of the text)
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        if is_utf16(err.object):  # (PowerShell 5's >: "byte 0xff at offset 0" did not say so)
            raise ValueError(f"config file {path}: {UTF16_TEXT}") from None
        raise ValueError(
            f"config file {path}: not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start}); save "
            "it as UTF-8 YAML or JSON"
        ) from None
    if not text.strip():
        return {}
    if suffix == ".json":
        data = parse_json(text, path, ValueError)
        _check_unique_json_keys(text, path)
        return data
    data = parse_yaml(text, path, check_nodes=lambda root: _check_unique_keys(root, path))
    return {} if data is None else data  # only comments


def _check_unique_keys(root: Any, path: Path) -> None:
    """Refuse a YAML mapping (the composed node tree `root`) that gives a key twice: the loaders keep the
    last value without a word, so a copy-pasted ``num_epochs: 1`` ... ``num_epochs: 5`` ran 5 epochs. Keys a
    ``<<: *base`` merge brings in may be overridden: that is what a merge is for. Each node is walked once
    (aliases share theirs). A number YAML 1.1 misreads is refused too (`_check_yaml11_number`)."""
    import yaml

    walked: set[int] = set()
    pending = [(root, "")]
    while pending:
        node, section = pending.pop()
        if node is None or id(node) in walked:
            continue
        walked.add(id(node))
        _check_yaml11_number(node, section.rstrip("."), path)
        if isinstance(node, yaml.SequenceNode):
            pending.extend((child, section) for child in node.value)
        if not isinstance(node, yaml.MappingNode):
            continue
        lines: dict[str, int] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
                pending.append((value, section))
                continue
            line = key.start_mark.line + 1
            if key.value in lines:
                raise ValueError(
                    f"{path} line {line}: {section}{key.value} given twice (line {lines[key.value]}); "
                    "keep one (the last would win without a word)"
                )
            lines[key.value] = line
            pending.append((value, f"{section}{key.value}."))


def _keyed_nodes(path: str | Path) -> dict[str, tuple[int, Any]]:
    """(the key's line, the value's YAML node) of each key of the config file `path`, by its dotted name;
    empty where the file cannot be read so."""
    import yaml

    try:
        root = yaml.compose(Path(path).read_text(encoding="utf-8-sig"), Loader=yaml.SafeLoader)
    except (OSError, ValueError, yaml.YAMLError):
        return {}
    found: dict[str, tuple[int, Any]] = {}
    pending = [(root, "")]
    while pending:
        node, section = pending.pop()
        if not isinstance(node, yaml.MappingNode) or len(found) > MAX_CONFIG_VALUES:
            continue
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                found.setdefault(f"{section}{key.value}", (key.start_mark.line + 1, value))
                pending.append((value, f"{section}{key.value}."))
    return found


def _as_typed(message: str, nodes: dict[str, tuple[int, Any]]) -> str:
    """`message` with each ``name: False`` (or True) it quotes from a file shown as the file has it, where
    that was a word YAML 1.1 reads as a bool (``eval_strategy: no`` is False): the user never wrote False."""
    for name, (_, node) in nodes.items():
        if node.tag != "tag:yaml.org,2002:bool" or node.value.lower() in ("true", "false"):
            continue
        read = "True" if node.value.lower() in ("yes", "on", "y") else "False"
        message = re.sub(
            rf"(?<![\w.]){re.escape(name)}: {read}(?![\w])",
            f"{name}: {node.value} (YAML reads it as {read})",
            message,
        )
    return message


def with_key_line(error: ValueError, path: str | Path) -> ValueError:
    """`error`, `merge_config`'s for the settings of the file `path` (``FILE: training.mode must be ...``),
    as ``FILE line 13: training.mode must be ...``: the line of the first dotted setting it names that the
    file holds. As it is where it names none."""
    message, prefix = str(error), f"{path}: "
    if not message.startswith(prefix):
        return error
    nodes = _keyed_nodes(path)
    rest = _as_typed(message[len(prefix) :], nodes)
    lines = {name: line for name, (line, _) in nodes.items()}
    for name in re.findall(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+", rest):
        if name in lines:
            return ValueError(f"{path} line {lines[name]}: {rest}")
    # A section's own name, quoted (``unknown field 'trainig'``, ``field 'training' must be a mapping``), or a
    # top-level setting named with its flag (``num_epochs (--num_epochs) must be ...``).
    for name in re.findall(r"'([A-Za-z_]\w*)'", rest) + re.findall(r"^([A-Za-z_]\w*) \(--", rest):
        if name in lines:
            return ValueError(f"{path} line {lines[name]}: {rest}")
    return error if rest == message[len(prefix) :] else ValueError(f"{prefix}{rest}")


def _check_yaml11_number(node: Any, name: str, path: Path) -> None:
    """Refuse a plain scalar that YAML 1.1 (PyYAML) reads as another number than it shows: a leading zero
    makes it octal (``seed: 0042`` is 34) and a colon base 60 (``batch_size: 1:30`` is 90), without a word.
    (As `merge_config` takes ``1e-3``, which YAML 1.1 reads as a string, as the number it spells.)"""
    import yaml

    if not isinstance(node, yaml.ScalarNode) or node.style not in (
        None,
        "",
    ):  # (plain: None, or "" by libyaml)
        return
    text = node.value.replace("_", "")
    digits = text.lstrip("+-")
    is_int, is_float = node.tag == "tag:yaml.org,2002:int", node.tag == "tag:yaml.org,2002:float"
    octal = is_int and len(digits) > 1 and digits[0] == "0" and digits[1].isdigit()
    if not (octal or ((is_int or is_float) and ":" in text)):
        return
    value = yaml.safe_load(node.value)
    if octal and value == int(text, 10):  # (007: the same number either way)
        return
    if octal:
        how, fix = "an octal number (a leading 0)", f"write {text[: len(text) - len(digits)]}{int(digits)}"
    else:
        how, fix = "a base-60 number (a colon)", "write the number you mean"
    raise ValueError(
        f"{path} line {node.start_mark.line + 1}: {name or 'the config'}: {node.value} is read by YAML as "
        f"{how}, {value}; {fix}, or quote it ('{node.value}')"
    )


def _check_unique_json_keys(text: str, path: Path) -> None:
    """`_check_unique_keys` for the JSON `text` (valid: parsed already). json keeps a repeated key's last
    value; its `object_pairs_hook` finds one, and YAML's reading of the same text (JSON is YAML, nearly
    always) its lines."""

    class Repeated(Exception):
        pass

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in items]
        if len(set(keys)) < len(keys):
            raise Repeated(next(key for i, key in enumerate(keys) if key in keys[:i]))
        return dict(items)

    try:
        json.loads(text, object_pairs_hook=pairs)
    except Repeated as repeated:
        import yaml

        try:
            _check_unique_keys(yaml.compose(text, Loader=yaml.SafeLoader), path)
        except yaml.YAMLError:  # (the rare JSON that YAML does not read: no lines, then)
            pass
        raise ValueError(
            f"{path}: {repeated.args[0]} given twice in one object; keep one (the last would win without a "
            "word)"
        ) from None


#: Most values a config file may hold (`audiotrain._yaml.MAX_YAML_VALUES`).
MAX_CONFIG_VALUES = MAX_YAML_VALUES


def load_config_file(config: Any, path: str | Path) -> Any:
    """`config` updated from a YAML (.yaml/.yml) or JSON file with the same nested layout (or a run's record
    of it, see `settings_of`)."""
    return merge_config(config, settings_of(load_config_data(path)), source=str(path))


#: Where a run keeps its resolved settings: the run folder's record (``config.json``: ``{"config": ...,
#: "versions": ...}``) and every checkpoint's ``trainer_state.json`` (``{"run_config": ...}``).
RUN_CONFIG_KEY = "run_config"


def settings_of(data: Any) -> Any:
    """The settings in what a config file holds: a plain settings tree as is; a run folder's record or a
    checkpoint's trainer_state.json unwrapped, so ``--config RUN/config.json`` (or a checkpoint's
    trainer_state.json) starts from exactly the settings that run resolved. So is a cv run's record,
    ``RUN/cv_progress.json`` (its folds, songs, settings and finished folds): a cv run folder holds no
    config.json, and its record was refused as "not a config file"."""
    if isinstance(data, dict) and isinstance(data.get(RUN_CONFIG_KEY), dict) and "progress" in data:
        return data[RUN_CONFIG_KEY]
    if isinstance(data, dict) and isinstance(data.get("config"), dict) and "versions" in data:
        return data["config"]
    if isinstance(data, dict) and isinstance(data.get("config"), dict) and {"folds", "done"} <= data.keys():
        return data["config"]
    return data


def settings_the_record_lacks(
    file: str | Path,
    config: Any,
    given: Collection[str] = (),
    skip: Collection[str] = (),
    plain_record: bool = False,
) -> list[str]:
    """The dotted fields of dataclass `config` that the run record in `file` (a run's config.json, or a
    checkpoint's trainer_state.json) does not hold: settings added to the recipe after an older audiotrain
    wrote it, which ``--config`` fills with today's defaults. None of a plain settings file (it holds only
    what it changes) unless `plain_record` (it is a whole run's settings: `create_trainer`'s config.yaml),
    nor those in `given` (set by flags) or `skip` (derived from others)."""
    try:
        raw = load_config_data(file)
    except (OSError, ValueError):  # (resolve_settings said what is wrong with it)
        return []
    data = settings_of(raw)
    if (data is raw and not plain_record) or not isinstance(data, dict):
        return []

    def lacking(node: Any, section: Any, path: str) -> list[str]:
        found = []
        for field in dataclasses.fields(section):
            name = f"{path}{field.name}"
            value = getattr(section, field.name)
            held = isinstance(node, dict) and field.name in node
            if dataclasses.is_dataclass(value):
                found += lacking(node.get(field.name) if held else None, value, f"{name}.")
            elif not held and name not in given and name not in skip:
                found.append(name)
        return found

    return lacking(data, config, "")


def describe_lacking(names: Sequence[str], config: Any) -> str:
    """`names` (from `settings_the_record_lacks`) for a message: a section none of whose fields is there is
    named once (``logger (all of it)``)."""
    names = list(names)
    shown: list[str] = []
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if not dataclasses.is_dataclass(value):
            continue
        inside = [n for n in names if n.startswith(f"{field.name}.")]
        if inside and len(inside) == len(dataclasses.fields(value)):
            shown.append(f"{field.name} (all of it)")
            names = [n for n in names if n not in inside]
    return ", ".join([*names, *shown])


def read_older_record(
    config: Any,
    file: str | Path,
    given: Collection[str],
    meanings: dict[str, Any],
    skip: Collection[str] = (),
    resuming: bool = False,
    plain_record: bool = False,
    remedy: str = "the file or flags can set them",
) -> tuple[Any, str | None]:
    """(`config`, resolved from the run record `file`, with the settings the record lacks that `meanings`
    knows set to what its older version ran with; a note line naming them and the others, which keep today's
    defaults), or (`config`, None) where the record lacks none. `given`: the fields set by flags, which stay;
    `skip`: derived fields. A record repeats its run: a setting it does not hold must not change that run
    without a word (another model size, other songs, another process count).

    The note also has a line for a record of a run taken further with other settings
    (`changed_settings_note`), which one run cannot repeat; not when `resuming` (a ``--resume`` goes on with
    the last ones, and says what it changes). `plain_record`: `file` is a whole run's settings without a
    record around them (`create_trainer`'s config.yaml); `remedy`: how the user sets them otherwise."""
    config, note = _read_lacking_settings(config, file, given, meanings, skip, plain_record, remedy)
    # (Once the lacking settings are read: the note names the values this run uses.)
    changed = None if resuming else changed_settings_note(config, file, given)
    notes = [line for line in (note, changed) if line]
    return config, "\n".join(notes) or None


def _read_lacking_settings(
    config: Any,
    file: str | Path,
    given: Collection[str],
    meanings: dict[str, Any],
    skip: Collection[str],
    plain_record: bool = False,
    remedy: str = "the file or flags can set them",
) -> tuple[Any, str | None]:
    """`read_older_record`'s reading of the settings the record lacks, and its note on them."""
    lacking = settings_the_record_lacks(file, config, given, skip, plain_record)
    if not lacking:
        return config, None
    applied = {name: meanings[name] for name in lacking if name in meanings}
    if applied:
        config = merge_config(config, _nest(applied), source=f"{file} (read as its version ran)")
    rest = [name for name in lacking if name not in applied]
    said = []
    if applied:
        said.append(
            "read as that version ran: " + ", ".join(f"{k} {_flag_value(v)}" for k, v in applied.items())
        )
    if rest:
        said.append(
            f"today's defaults for {describe_lacking(rest, config)}, so this run may differ from that one there"
        )
    return config, older_record_note(file, said, remedy)


def older_record_note(file: str | Path, said: Sequence[str], remedy: str) -> str:
    """The note line on a record or checkpoint `file` of an older audiotrain that lacks settings added since:
    `said`, what is used in their place (``today's defaults for ...``), and `remedy`, how to set them."""
    return (
        f"note: {file} was written by an older audiotrain, without settings added since; "
        + "; ".join(said)
        + f" ({remedy})"
    )


#: Where a run folder's record (config.json) keeps the settings its earlier epochs trained with, when a
#: ``--resume`` went on with other ones: a list of ``{"until_epoch": E, "checkpoint": ..., "settings":
#: {dotted name: the value until epoch E}}``, oldest first (the chord recipe's `earlier_settings`).
EARLIER_KEY = "earlier"


def changed_settings_note(config: Any, file: str | Path, given: Collection[str] = ()) -> str | None:
    """A note line for ``--config RUN/config.json`` of a run that was taken further (``--resume``) with other
    settings (its record's `EARLIER_KEY`): each such setting's values and the epochs they held, what this run
    uses from its first epoch to its last (`config`, the resolved settings; those in `given` came from flags),
    and the flags that give the ones it began with. None for any other file. A run from the record trains with
    one set of settings throughout, and silently trained its first epochs at the last part's learning rate."""
    try:
        record = load_config_data(file)
    except (OSError, ValueError):  # (resolve_settings said what is wrong with it)
        return None
    settings = settings_of(record)
    entries = record.get(EARLIER_KEY) if settings is not record and isinstance(record, dict) else None
    if not isinstance(entries, list):
        return None
    entries = [
        entry
        for entry in entries
        if isinstance(entry, dict)
        and isinstance(entry.get("until_epoch"), int)
        and isinstance(entry.get("settings"), dict)
    ]
    values: dict[str, list[tuple[int, Any]]] = {}  # dotted name -> (until epoch, value), oldest first
    for entry in sorted(entries, key=lambda entry: entry["until_epoch"]):
        for name, value in entry["settings"].items():
            values.setdefault(str(name), []).append((entry["until_epoch"], value))
    described, used, first_part = [], [], []
    for name, held in values.items():
        found, last = _dotted_value(settings, name)
        found_now, now = _dotted_value(config, name)
        if not (found and found_now):  # (a setting this version no longer has)
            continue
        spans = [f"{_flag_value(held[0][1])} for its first {held[0][0]} epochs"]
        spans += [f"{_flag_value(value)} until epoch {epoch}" for epoch, value in held[1:]]
        described.append(f"{name} {', '.join(spans)}, then {_flag_value(last)}")
        used.append(f"{name} {_flag_value(now)}" + (f" (--{name})" if name in given else ""))
        first_part.append(f"--{name} {_flag_value(held[0][1])}")
    if not described:
        return None
    return (
        f"note: {file} records a run taken further (--resume) with other settings than it began with (its "
        f'"{EARLIER_KEY}" keeps them): {"; ".join(described)}. This run uses one value of each throughout: '
        f"{', '.join(used)} (to use those it began with, add {' '.join(first_part)})"
    )


def _dotted_value(settings: Any, name: str) -> tuple[bool, Any]:
    """(whether it is there, the value) of the dotted setting `name` in a settings dict or dataclass."""
    value = settings
    for part in name.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif dataclasses.is_dataclass(value) and part in {f.name for f in dataclasses.fields(value)}:
            value = getattr(value, part)
        else:
            return False, None
    return True, value


def _flag_value(value: Any) -> str:
    """A setting's value as its flag takes it (``train,studio``, ``false``)."""
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def preset_settings(presets: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    """The nested changes of preset `name`; an unknown name is an error that lists the presets."""
    if name not in presets:
        close = difflib.get_close_matches(name, presets, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown preset {name!r}{hint}; the presets are {', '.join(presets)}")
    return presets[name]


def file_settings(
    file: str | Path, presets: dict[str, dict[str, Any]], config: Any = None
) -> tuple[str | None, Any]:
    """(the preset a config file names with a top-level ``preset:``, or None; the file's other settings).

    With `config` (the dataclass the settings are for), a run record or checkpoint state whose settings are
    not its fields is refused as another recipe's run, not field by field."""
    raw = load_config_data(file)
    data = settings_of(raw)
    if config is not None and data is not raw and isinstance(data, dict):
        _check_recipe_of_record(raw, data, config, file)
    if config is not None and data is raw and isinstance(data, dict):
        _check_looks_like_config(data, config, file)
    if not (isinstance(data, dict) and "preset" in data):
        return None, data
    data = dict(data)
    name = data.pop("preset")
    if not isinstance(name, str):
        raise ValueError(f"{file}: preset must be one of {', '.join(presets)}, got {name!r}")
    try:
        preset_settings(presets, name)
    except ValueError as err:
        raise ValueError(f"{file}: {err}") from None
    return name, data


def _check_looks_like_config(data: dict, config: Any, file: str | Path) -> None:
    """Refuse a file most of whose top-level keys are no field of `config` (a run's history.json, a scores
    file): field by field it was "unknown field 'epoch'; did you mean 'num_epochs'?", as if one key were
    misspelt. A file of one or two keys, or mostly settings, keeps that per-key "did you mean"."""
    fields = {f.name for f in dataclasses.fields(config)} | {"preset"}
    unknown = [str(key) for key in data if key not in fields]
    if len(unknown) < 3 or len(unknown) <= len(data) - len(unknown):
        return
    listed = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
    raise ValueError(
        f"{file} does not look like a config file: {len(unknown)} of its {len(data)} top-level keys "
        f"({listed}) "
        f"are no setting of this command (a run's settings are in its config.json, a cv run's in its "
        "cv_progress.json); expected keys among "
        f"{sorted(fields - {'preset'})}"
    )


def _check_recipe_of_record(record: dict, settings: dict, config: Any, file: str | Path) -> None:
    """Refuse the run record `record` (settings `settings`) when its top-level settings are not fields of
    `config`: the run of another recipe (a CLAP run's config.json given to the chord recipe)."""
    foreign = sorted(str(key) for key in set(settings) - {f.name for f in dataclasses.fields(config)})
    if not foreign:
        return
    command = " ".join(str(part) for part in record.get("command") or [])
    recipe = re.search(r"audiotrain[./]recipes[./](\w+)", command)
    whose = f"a run of the {recipe.group(1)} recipe" if recipe else "a run of another recipe"
    # A checkpoint's state (`--resume`, `--init_from`, `--checkpoint`), or a run's record (`--config`).
    checkpoint = Path(file).name == "trainer_state.json"
    what, fix = (
        ("a checkpoint of", "Give a checkpoint of this recipe's runs")
        if checkpoint
        else ("the record of", "Pass a config file (or run) of this recipe")
    )
    raise ValueError(
        f"{file} is {what} {whose}, not of this one: its settings {', '.join(foreign[:4])}"
        f"{', ...' if len(foreign) > 4 else ''} are not this recipe's. {fix}"
    )


def resolve_settings(
    config: Any,
    presets: dict[str, dict[str, Any]],
    preset: str | None = None,
    file: str | Path | None = None,
    namespace: argparse.Namespace | None = None,
    derived: Callable[[Any], dict[str, tuple[Any, str]]] | None = None,
    refuse_unused_preset: bool = True,
) -> Any:
    """`config` (the defaults) with, later winning: a preset < a YAML/JSON file < command-line flags.

    The file may name its own preset (a top-level ``preset: production``) in place of `preset` (the
    ``--preset`` flag); both naming different presets is an error, as neither can silently win. So is a
    `preset` whose every setting the file sets (a run's config.json sets them all): it would change nothing
    (`refuse_unused_preset`; false where the file is a resumed checkpoint's record, not a ``--config``).

    `derived` gives the fields a recipe derives from others (no flag of their own) for a config: dotted name
    → (value, what it follows). A file may hold them (a run's own config.json does) only with those values,
    checked before the flags apply (a flag may then change what they follow).
    """
    data: Any = {}
    if file is not None:
        own, data = file_settings(file, presets, config)
        if own is not None and preset is not None and own != preset:
            raise ValueError(
                f"--preset {preset} and {file} (preset: {own}) name different presets; give one (drop --preset, "
                "or the file's preset: line)"
            )
        if own is None and preset is not None and refuse_unused_preset:
            _refuse_unused_preset(preset, preset_settings(presets, preset), data, file)
        preset = own or preset
    if preset is not None:
        config = merge_config(config, preset_settings(presets, preset), source=f"preset {preset!r}")
    if file is not None:
        try:
            config = merge_config(config, data, source=str(file))
        except ValueError as error:  # (a file's mistake is named by its line, as create_trainer's are)
            raise with_key_line(error, file) from None
        if derived is not None:
            _check_derived_fields(data, derived(config), file)
    return apply_arguments(config, namespace) if namespace is not None else config


def config_from_preset(
    config: Any, presets: dict[str, dict[str, Any]], name: str, overrides: dict[str, Any]
) -> Any:
    """`config` (the defaults) with preset `name` and then `overrides`, by the rules of ``--preset NAME``
    and flags (`resolve_settings`, `merge_config`): a recipe config's ``from_preset(name, **overrides)``.

    An override is a field (``num_epochs=3``), a section's setting by its flag's dotted name
    (``**{"data.batch_size": 8}``), or a section as a dict of some of its settings (``data={...}``); either
    way the preset's other settings of that section stay. A section given both ways is refused: which of
    the two wins is not obvious."""
    called = f"{type(config).__name__}.from_preset({name!r})"
    if not isinstance(name, str):
        raise ValueError(f"{called}: the preset is a name, one of {', '.join(presets)}")
    try:
        config = resolve_settings(config, presets, name)
    except ValueError as err:
        raise ValueError(f"{called}: {err}") from None
    sections = {key.partition(".")[0] for key in overrides if "." in key}
    both = sorted(sections & {key for key in overrides if isinstance(overrides[key], Mapping)})
    if both:
        raise ValueError(
            f"{called}: section {both[0]!r} is given both as a dict ({both[0]}={{...}}) and by dotted names "
            f"({both[0]}.NAME=...); give its settings one way"
        )
    return merge_config(config, _nest(overrides), source=called) if overrides else config


def _refuse_unused_preset(name: str, preset: dict[str, Any], data: Any, file: str | Path) -> None:
    """Refuse ``--preset`` `name` where the ``--config`` file's settings `data` set every setting it does:
    the file wins over a preset, so ``--preset development --config RUN/config.json`` ran the recorded
    settings without a word, as if the preset had been applied."""
    set_in_file = _setting_names(data) if isinstance(data, dict) else set()
    if not _setting_names(preset) <= set_in_file:
        return
    raw = load_config_data(file)
    whole = " (a run's record sets them all)" if settings_of(raw) is not raw else ""
    raise ValueError(
        f"--preset {name} changes nothing beside --config {file}: the file sets every setting the preset "
        f"does{whole}, and a file wins over a preset; give one (drop --preset, or give the settings to change "
        "as flags)"
    )


def _setting_names(tree: dict[str, Any], prefix: str = "") -> set[str]:
    """The dotted name of each setting in a nested settings tree."""
    names: set[str] = set()
    for key, value in tree.items():
        if isinstance(value, dict):
            names |= _setting_names(value, f"{prefix}{key}.")
        else:
            names.add(f"{prefix}{key}")
    return names


def _check_derived_fields(data: Any, expected: dict[str, tuple[Any, str]], file: str | Path) -> None:
    """Refuse a derived field that the file `data` sets to another value than the one it follows."""
    for name, (value, follows) in expected.items():
        node, found = data, True
        for part in name.split("."):
            found = isinstance(node, dict) and part in node
            if not found:
                break
            node = node[part]
        if found and node != value:
            raise ValueError(
                f"{file}: {name} is {shown(node)}, but it is not a setting: it follows {follows} ({shown(value)} here); "
                f"remove {name} from the file"
            )


class _OnePreset(argparse.Action):
    """``--preset``, refused when given twice with different names: the last one won, and ``--preset
    quick_test ... --preset production`` started hours of feature computing. (Other flags given twice keep
    argparse's rule, the last wins: a preset is the one flag that changes dozens of settings at once.)"""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option_string: Any = None
    ):
        earlier = getattr(namespace, self.dest, None)
        if earlier is not None and earlier != values:
            parser.error(f"--preset given twice, {earlier} and {values}; give one")
        setattr(namespace, self.dest, values)


def add_preset_argument(parser: argparse.ArgumentParser, presets: dict[str, dict[str, Any]]) -> None:
    """``--preset NAME``: start from a shipped preset (then the --config file, then the flags)."""
    parser.add_argument(
        "--preset",
        action=_OnePreset,
        default=None,
        metavar="NAME",
        help=f"start from a shipped preset: {', '.join(presets)} (then --config, then flags override it)",
    )


class ConfigInCheckpoint(Callback):
    """A Trainer callback that stores a run's resolved settings in every checkpoint it writes
    (``trainer_state.json`` under `RUN_CONFIG_KEY`), so a checkpoint alone says how it was trained and
    ``--config CHECKPOINT/trainer_state.json`` repeats that run."""

    def __init__(self, settings: dict[str, Any]):
        self.settings = json.loads(json.dumps(settings))  # a JSON-safe copy, fixed now

    def on_save_checkpoint(self, trainer: Any, module: Any, checkpoint: dict[str, Any]) -> None:
        checkpoint[RUN_CONFIG_KEY] = self.settings


def returning_exit_status(main: Callable[..., int]) -> Callable[..., int]:
    """A recipe's ``main(argv) -> int`` that returns its exit status for argparse's ends too (a usage error:
    2, ``--help``: 0, which `parse_args` ends with `sys.exit`), as it returns it for the errors it reports
    itself: a program that calls it (a notebook, a wrapper script, a test) gets the status the command
    exits with for every mistake on its command line, not a SystemExit for some. A stop signal's
    `SaveAborted` (a KeyboardInterrupt too) still raises, as `Trainer.fit`'s stop does."""

    @functools.wraps(main)
    def returning(argv: Sequence[str] | None = None) -> int:
        try:
            return main(argv)
        except SystemExit as ended:
            if isinstance(ended, KeyboardInterrupt):
                raise
            if ended.code is None or isinstance(ended.code, int):
                return ended.code or 0
            print(ended.code, file=sys.stderr)  # (what Python does with a message: it exits 1)
            return 1

    return returning


#: Why the recipes take no `--max_time` (the Trainer's setting), and what a run on a time limit does instead.
NO_TIME_LIMIT_FLAG = (
    "the recipes take no time limit: the SIGTERM of a scheduler's limit or of `timeout` (or SIGUSR1, sbatch "
    "--signal=USR1@120) stops training as Ctrl-C does, saving RUN/checkpoints/interrupted, and prints the "
    "command that goes on (--resume); audiotrain.Trainer(max_time=...) is the limit from Python"
)
#: `SettingsParser(absent_flags=...)` for a training command: the time-limit flags a Lightning user tries.
TIME_LIMIT_FLAGS = dict.fromkeys(("--max_time", "--train.max_time"), NO_TIME_LIMIT_FLAG)


class SettingsParser(argparse.ArgumentParser):
    """An `ArgumentParser` whose errors are two lines, not the usage of every setting (dozens of lines) first.

    Abbreviated flags are refused (``allow_abbrev=False``): with dozens of settings, ``--num_epoch`` silently
    meaning ``--num_epochs`` hides typos, and a new setting could change what an abbreviation means.
    Sub-parsers (`add_subparsers`) are SettingsParsers too, so the same holds for them.

    `help_command` is the command whose help lists every setting, named in each error (default:
    ``<prog> --help``); the chord recipe's demo takes its flags without a command, but its bare ``--help`` is
    the overview of the commands, so its errors name ``... demo --help``. `other_names` maps a flag of
    another recipe to this parser's flag for the same thing (``{"--run_dir": "--out"}``): its "did you mean".
    `absent_flags` maps a flag this command does not have, but a user may look for (another recipe's, the
    Trainer's), to why not and what to use instead, said after argparse's "unrecognized arguments".
    In a rank other than 0 of a launched job the error is left to rank 0, which meets the same one.
    """

    def __init__(
        self,
        *args: Any,
        help_command: str | None = None,
        other_names: dict[str, str] | None = None,
        absent_flags: dict[str, str] | None = None,
        **kwargs: Any,
    ):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.help_command = help_command or f"{self.prog} --help"
        self.other_names = dict(other_names or {})
        self.absent_flags = dict(absent_flags or {})

    # The command names itself as the recipe was started (`audiotrain chords ...`, `audiotrain._invocation`):
    # its prog (before argparse wraps the usage to it) and whatever else it prints (help, errors).
    @property
    def prog(self) -> str:
        return self._prog

    @prog.setter
    def prog(self, prog: str) -> None:
        self._prog = as_started(prog)

    def _print_message(self, message: str, file: Any = None) -> None:
        """argparse's, but a write that fails for its storage is raised, for the command to say in one line
        and end with status 1: argparse drops every OSError of the write, and a help longer than stdout's
        buffer (``clap --help > /dev/full``, a full disk) ended 0 with nothing written. A reader that left
        (``--help | head``) and a closed stream are still passed over, as argparse passes them."""
        if not message:
            return
        file = file or sys.stderr
        try:
            file.write(as_started(message))
        except (AttributeError, OSError) as error:
            if isinstance(error, OSError) and error.errno in STORAGE_ERRNOS:
                raise

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        """As argparse's, where a flag that takes an optional true/false (`add_overwrite_argument`) given alone
        before a word that is no such value (``predict --overwrite song.wav``) is read as ``--overwrite=true``:
        argparse would take the word for its value."""
        argv = list(sys.argv[1:] if args is None else args)
        optional_bools = {
            option
            for action in self._actions
            if action.nargs == "?" and action.type is parse_bool
            for option in action.option_strings
        }
        for i, arg in enumerate(argv[:-1]):
            if arg == "--":
                break
            following = argv[i + 1]
            if arg in optional_bools and not following.startswith("-") and not _is_bool_word(following):
                argv[i] = f"{arg}=true"
        # Noted here, not in parse_args alone: a command that parses known arguments itself (predict, to
        # name extra audio files) gives its errors the same "did you mean".
        given = argv[: argv.index("--")] if "--" in argv else argv
        self._unknown_flags = [
            flag
            for text in given
            if (flag := text.partition("=")[0]).startswith("--") and flag not in self._option_string_actions
        ]
        return super().parse_known_args(argv, namespace)

    def parse_args(self, args: Any = None, namespace: Any = None) -> argparse.Namespace:
        """As argparse's, with a "did you mean" for each unknown flag (as a --config file's unknown key gets),
        also when a required argument is missing: ``--checkpont x`` is then why ``--checkpoint`` is."""
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:
            self.error(f"unrecognized arguments: {' '.join(unknown)}")
        return parsed

    def _why_absent(self, flag: str) -> str | None:
        # (--class-weights too: a hyphenated spelling of an absent flag got "did you mean" a flag unrelated)
        return self.absent_flags.get(flag) or self.absent_flags.get("--" + flag[2:].replace("-", "_"))

    def _suggestions(self) -> str:
        """``; did you mean --num_epochs?`` for the unknown flags with a close known one, and why the command
        has none of the `absent_flags` given ("" for neither)."""
        unknown = getattr(self, "_unknown_flags", [])
        absent = "".join(f"; {flag}: {why}" for flag in unknown if (why := self._why_absent(flag)))
        close = {
            flag: match
            for flag in unknown
            if not self._why_absent(flag) and (match := self._close_flag(flag))
        }
        if not close:
            return absent
        if len(close) == 1:
            return f"; did you mean {next(iter(close.values()))}?{absent}"
        return f"; did you mean {', '.join(f'{match} for {flag}' for flag, match in close.items())}?{absent}"

    def _close_flag(self, flag: str) -> str | None:
        """The known flag closest to the unknown `flag` (``--num_epochs`` for ``--num_epoch``), else the
        dotted ones whose name after the dot is closest to its (``--train.epochs`` for ``--epochs``: a short
        name is too unlike its dotted flag as a whole), else None. Another recipe's name for a flag
        (`other_names`) gets this one's."""
        if flag in self.other_names:
            return self.other_names[flag]
        known = self._option_string_actions
        name = flag.lstrip("-").rpartition(".")[2]
        # (Spelt too unlike the setting for difflib: --lr is nearer --logger; another library's name, nearer
        # another setting.)
        if name in OTHER_LIBRARIES_NAMES:
            setting = OTHER_LIBRARIES_NAMES[name]
            meant = [f"--{setting}"] if f"--{setting}" in known else []
            meant = meant or sorted(o for o in known if o.endswith(f".{setting}"))
            if meant:
                return " or ".join(meant)
        match = difflib.get_close_matches(
            flag, known, n=1, cutoff=0.75
        )  # (difflib's 0.6 offers --logger for --lr)
        if match:
            return match[0]
        by_name: dict[str, list[str]] = {}
        for option in known:
            if option.startswith("--") and "." in option:
                by_name.setdefault(option.rpartition(".")[2], []).append(option)
        name = flag.lstrip("-").rpartition(".")[2]
        match = difflib.get_close_matches(name, by_name, n=1, cutoff=0.75)
        return " or ".join(sorted(by_name[match[0]])) if match else None

    def format_usage(self) -> str:
        return _rewrapped_usage(super().format_usage(), self.prog)

    def format_help(self) -> str:
        return _rewrapped_usage(super().format_help(), self.prog)

    def error(self, message: str):
        if message.startswith("the following arguments are required") and getattr(self, "_unknown_flags", []):
            message += f"; unrecognized arguments: {' '.join(self._unknown_flags)}"
        if "unrecognized arguments" in message:
            message += self._suggestions()
        from audiotrain.distributed.failures import wait_for_main_to_report
        from audiotrain.distributed.local import launched_rank

        if launched_rank() != 0:
            # Under a launcher every rank parses the same command line: rank 0 prints the error for the job
            # (it was printed once per rank), and this rank gives it the time to before its exit ends the job.
            wait_for_main_to_report()
            self.exit(2)
        self.exit(2, f"{self.prog}: error: {message}\n(see {self.help_command} for every setting)\n")


#: One item of argparse's usage: an optional group (one nesting level: ``[--a [A]]``), a group in
#: parentheses, or a word.
_USAGE_ITEM = re.compile(r"\[[^\[\]]*(?:\[[^\[\]]*\][^\[\]]*)*\]|\([^()]*\)|\S+")


def _rewrapped_usage(text: str, prog: str) -> str:
    """`text` (help or usage) with its usage block filled to the terminal under ``usage: ``: argparse indents
    it under a long prog (``python -m audiotrain.recipes.chords train``), and its longer groups then ran
    past an 80-column terminal, which it does not break."""
    width = max(shutil.get_terminal_size().columns - 2, 40)
    head, blank, rest = text.partition("\n\n")
    prefix = f"usage: {prog}"
    if not head.startswith(prefix) or all(len(line) <= width for line in head.splitlines()):
        return text
    indent = " " * len("usage: ")
    lines, line = [prefix], indent
    for item in _USAGE_ITEM.findall(" ".join(head[len(prefix) :].split())):
        if line.strip() and len(line) + 1 + len(item) > width:
            lines.append(line)
            line = indent
        line = f"{line}{' ' if line.strip() else ''}{item}"
    lines.append(line)
    return "\n".join(lines) + ("\n" if not blank and head.endswith("\n") else "") + blank + rest


def unknown_command_message(given: str, commands: Sequence[str], without: str = "") -> str:
    """The error line for a command line whose first word `given` is none of `commands` (`without`: what no
    command does, when that is not among them)."""
    close = difflib.get_close_matches(given, commands, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    bare = f", or none ({without})" if without else ""
    return f"unknown command {given!r}{hint}; expected one of {', '.join(commands)}{bare} (see --help)"


#: Errors caused by what the user passed (files, folders, checkpoints, settings). The recipes' `main` prints
#: them as an `error:` line (exit status 2) instead of a traceback; each message names the file, line or field.
USER_ERRORS = (
    AudioError,
    ckpt.CheckpointError,
    FileNotFoundError,
    FileExistsError,
    KernelCompileError,  # TMPDIR full or not writable: MLX could not compile a kernel there (it names TMPDIR)
    LauncherEnvironmentError,  # a launcher's variables left over from an earlier job: which, and to unset them
    NotADirectoryError,
    NotReplaceableError,  # another user's output in a shared (sticky) folder: whose, and to write elsewhere
    OutputWriteError,  # a full disk (a quota, an I/O error) writing an output: the file and the cause
    UnsafeCheckpointError,  # a pickle that asks for code: refused, and said in one line, not a traceback
    ValueError,
)
