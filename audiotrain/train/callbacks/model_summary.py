"""`ModelSummary`: the table of the module's layers and parameter counts Lightning prints as `fit` starts."""

from __future__ import annotations

import math
import numbers
import sys
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from audiotrain.train.callback import Callback

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

if TYPE_CHECKING:
    from audiotrain.train.module import TrainModule
    from audiotrain.train.trainer import Trainer

# Lightning's names for a row of parameters that no submodule holds, and for a cell that does not apply.
_OTHER_PARAMS = "other params"
_NOT_APPLICABLE = "n/a"
_COUNT_UNITS = (" ", "K", "M", "B", "T")
# The Trainer whose fit is printing its summary: `summarize` is a staticmethod, as Lightning's.
_printing_trainer: ContextVar[Any] = ContextVar("_printing_trainer", default=None)


@dataclass(frozen=True)
class LayerRow:
    """One submodule in the table: its dotted name, class, parameters (all of them, frozen included, as
    Lightning counts them) and whether it is in train mode."""

    name: str
    type: str
    params: int
    training: bool


def _unique(tree: dict) -> list[tuple[str, mx.array]]:
    """(name, array) of each array in a parameter tree once: a module used under two names (`self.b = self.a`,
    MLX's weight tying) holds its weights once, and Lightning counts a shared parameter once too."""
    seen: set[int] = set()
    unique = []
    for name, array in tree_flatten(tree):
        if id(array) not in seen:
            seen.add(id(array))
            unique.append((name, array))
    return unique


def _sizes(tree: dict) -> tuple[int, int]:
    """(elements, bytes) of the arrays in a parameter tree."""
    leaves = [array for _, array in _unique(tree)]
    return sum(a.size for a in leaves), sum(a.nbytes for a in leaves)


def _packing_factors(module: nn.Module) -> dict[str, int]:
    """Dotted name -> weights per element of each quantized layer's packed weight (`nn.quantize`: 32 // bits
    in each uint32): the counts are of the weights the layer holds, as mlx-lm's `get_total_parameters`
    counts them, not of the words that pack them (a 4-bit base counted 8x too small beside its adapters)."""
    factors = {}
    for name, sub in module.named_modules():
        weight, bits = sub.get("weight"), getattr(sub, "bits", None)
        if (
            isinstance(weight, mx.array)
            and isinstance(bits, int)
            and not mx.issubdtype(weight.dtype, mx.inexact)
        ):
            factors[f"{name}.weight" if name else "weight"] = 32 // bits
    return factors


def _param_count(module: nn.Module, tree: dict) -> int:
    """The parameters of `tree` (`module`'s, or a part of them), a quantized layer's packed weight counted
    as the weights it packs; its scales and biases count as the parameters they are (MLX can train them)."""
    factors = _packing_factors(module)
    return sum(array.size * factors.get(name, 1) for name, array in _unique(tree))


def _submodules(module: nn.Module, prefix: str = "") -> list[tuple[str, int, nn.Module]]:
    """(dotted name, depth, submodule) for every submodule below `module`, depth first in the order they were
    set. MLX keeps children in lists and dicts too (`self.layers = [...]`, which is no module of its own):
    a list's items are one level down, named `layers.0`, as torch's ModuleList's children are."""
    found = []
    children = tree_flatten(module.children(), is_leaf=lambda value: isinstance(value, nn.Module))
    for name, child in children:
        if not isinstance(child, nn.Module):
            continue
        dotted = f"{prefix}{name}"
        found.append((dotted, 1, child))
        found += [(n, depth + 1, m) for n, depth, m in _submodules(child, f"{dotted}.")]
    return found


def human_readable_count(number: int) -> str:
    """Lightning's `get_human_readable_count`: 123 -> "123  ", 1234 -> "1.2 K", 2e6 -> "2.0 M"."""
    digits = int(math.floor(math.log10(number)) + 1) if number > 0 else 1
    groups = min(int(math.ceil(digits / 3)), len(_COUNT_UNITS))
    scaled = number * 10 ** (-3 * (groups - 1))
    if groups == 1 or scaled >= 100:
        return f"{int(scaled):,d} {_COUNT_UNITS[groups - 1]}"
    return f"{scaled:,.1f} {_COUNT_UNITS[groups - 1]}"


@dataclass(frozen=True)
class Summary:
    """What the table shows of a module: its rows to `max_depth` and the totals over every parameter."""

    rows: list[LayerRow]
    total_params: int
    trainable_params: int
    size_bytes: int  # of all parameters, in their dtypes
    modules_in_train_mode: int  # the root excluded, as in Lightning
    modules_in_eval_mode: int
    # Parameters set on the root module directly (`self.scale = mx.ones(...)`), in no submodule: the table's
    # "other params" row. Counted against the top-level submodules, whatever `max_depth` lists (the rows
    # of deeper levels repeat their parents' parameters: Lightning's sum over every row lost the row at -1).
    other_params: int = 0

    @classmethod
    def of(cls, module: nn.Module, max_depth: int = 1) -> Summary:
        check_max_depth(max_depth)
        every = _submodules(module)
        rows = [
            LayerRow(name, type(sub).__name__, _param_count(sub, sub.parameters()), bool(sub.training))
            for name, depth, sub in every
            if max_depth == -1 or depth <= max_depth
        ]
        total, size_bytes = _param_count(module, module.parameters()), _sizes(module.parameters())[1]
        # A module listed under two names (`self.b = self.a`) is one module, its weights counted once.
        distinct = list({id(sub): sub for _, _, sub in every}.values())
        in_train = sum(bool(sub.training) for sub in distinct)
        in_top_level, seen = 0, set()
        for sub in (sub for _, depth, sub in every if depth == 1):
            factors = _packing_factors(sub)
            for name, array in tree_flatten(sub.parameters()):
                if id(array) not in seen:
                    seen.add(id(array))
                    in_top_level += array.size * factors.get(name, 1)
        return cls(
            rows=rows,
            total_params=total,
            trainable_params=_param_count(module, module.trainable_parameters()),
            size_bytes=size_bytes,
            modules_in_train_mode=in_train,
            modules_in_eval_mode=len(distinct) - in_train,
            other_params=total - in_top_level,
        )

    def summary_data(self) -> list[tuple[str, list[str]]]:
        """Lightning's `summary_data`, what `ModelSummary.summarize` gets: the table's columns as (header, cells),
        its " ", "Name", "Type", "Params" and "Mode" (no FLOPs), "other params" last where there are any."""
        columns = [
            (" ", [str(i) for i in range(len(self.rows))]),
            ("Name", [row.name for row in self.rows]),
            ("Type", [row.type for row in self.rows]),
            ("Params", [human_readable_count(row.params) for row in self.rows]),
            ("Mode", ["train" if row.training else "eval" for row in self.rows]),
        ]
        if self.other_params > 0:
            extra = [
                " ",
                _OTHER_PARAMS,
                _NOT_APPLICABLE,
                human_readable_count(self.other_params),
                _NOT_APPLICABLE,
            ]
            for (_, cells), cell in zip(columns, extra):
                cells.append(cell)
        return columns

    @property
    def training_modes(self) -> dict[str, int]:
        """Lightning's `total_training_modes`: the modules in train and in eval mode (the root excluded)."""
        return {"train": self.modules_in_train_mode, "eval": self.modules_in_eval_mode}

    def table(self) -> str:
        """The table as Lightning lays it out (its columns less FLOPs and the input and output sizes)."""
        return format_table(
            self.summary_data(),
            self.total_params,
            self.trainable_params,
            self.size_bytes / 1e6,
            self.training_modes,
        )


def format_table(
    summary_data: list[tuple[str, list[str]]],
    total_parameters: int,
    trainable_parameters: int,
    model_size: float,
    total_training_modes: dict[str, int],
) -> str:
    """Lightning's layout of a summary: the columns of `summary_data`, then the totals (`model_size` in MB)."""
    columns = summary_data
    widths = [max([len(header), *(len(cell) for cell in cells)]) for header, cells in columns]
    rule = "-" * (sum(widths) + 3 * (len(columns) + 1))
    lines = [" | ".join(header.ljust(width) for (header, _), width in zip(columns, widths)), rule]
    for i in range(len(columns[0][1]) if columns else 0):
        lines.append(" | ".join(cells[i].ljust(width) for (_, cells), width in zip(columns, widths)))
    lines.append(rule)
    totals = [
        (human_readable_count(trainable_parameters), "Trainable params"),
        (human_readable_count(total_parameters - trainable_parameters), "Non-trainable params"),
        (human_readable_count(total_parameters), "Total params"),
        # Lightning: parameters x the precision's bytes; here the bytes they take in their dtypes (the
        # same for float32, and for bf16-true; bf16-mixed keeps float32 weights).
        (f"{model_size:,.3f}", "Total estimated model params size (MB)"),
        (str(total_training_modes.get("train", 0)), "Modules in train mode"),
        (str(total_training_modes.get("eval", 0)), "Modules in eval mode"),
    ]
    lines += [value.ljust(10) + label for value, label in totals]
    return "\n".join(lines)


def check_max_depth(max_depth: object) -> None:
    if isinstance(max_depth, bool) or not isinstance(max_depth, numbers.Integral) or max_depth < -1:
        raise ValueError(
            f"ModelSummary(max_depth={max_depth!r}): expected an int >= -1 (-1: every level of submodules, "
            "0: no summary, N: submodules N levels deep)"
        )


class ModelSummary(Callback):
    """Print Lightning's table of the module's submodules as `fit` starts: name, type, parameters and mode
    (train or eval), then the trainable, non-trainable and total parameters, their size in MB and the
    modules in each mode. The rows are the TrainModule's submodules (the model it holds, e.g.
    `self.model`, and that model's layers) down to `max_depth` levels: 1 (the default) its direct
    children, -1 every level, 0 prints nothing (as Lightning's callback). Frozen parameters
    (`module.freeze()`) are the non-trainable ones; a row counts all parameters below it.

    `Trainer(enable_model_summary=True)` (the default, as in Lightning) adds a `ModelSummary()`; one passed
    in `callbacks` replaces it. It prints once per `fit` (a resumed one too), not in validate, test or
    predict, from rank 0 alone under data parallel, on stderr (with the progress bar and the Trainer's
    other lines about the run, and where Lightning's log handler writes it), after a blank line as
    Lightning's.

    Differs from Lightning: no FLOPs column and no "Total Flops" (MLX has no FLOP counter), and no input
    and output sizes (`example_input_array` is not run). A list or dict of modules (`self.layers = [...]`)
    is no module in MLX: its items are one level down, named `layers.0`, as a ModuleList's children are.
    The size in MB is the parameters' bytes in their own dtypes, where Lightning multiplies the count by
    the precision's bytes (the same for float32 and bf16-true weights).
    """

    def __init__(self, max_depth: int = 1, **summarize_kwargs: Any):
        check_max_depth(max_depth)
        self.max_depth = int(max_depth)
        self._summarize_kwargs = summarize_kwargs  # (passed on to `summarize`, as Lightning's)

    def summary(self, module: nn.Module) -> Summary:
        """The summary of `module` at this callback's `max_depth`."""
        return Summary.of(module, self.max_depth)

    def on_fit_start(self, trainer: Trainer, module: TrainModule) -> None:
        if self.max_depth == 0 or not trainer.is_global_zero:
            return
        # A fit with nothing to train (a done run fit again): its one line says why, not a run's table.
        if trainer._at_its_limits():
            return
        summary = self.summary(module)
        token = _printing_trainer.set(trainer)
        try:
            self.summarize(
                summary.summary_data(),
                summary.total_params,
                summary.trainable_params,
                summary.size_bytes / 1e6,
                summary.training_modes,
                total_flops=0,  # (MLX has no FLOP counter)
                **self._summarize_kwargs,
            )
        finally:
            _printing_trainer.reset(token)

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int = 0,
        **summarize_kwargs: Any,
    ) -> None:
        """Print the table (Lightning's staticmethod, with its arguments: override it to show or keep the
        summary elsewhere). `summary_data` is the columns as (header, cells), `model_size` in MB,
        `total_training_modes` {"train": n, "eval": n}, `total_flops` 0 (MLX has no FLOP counter); the
        keyword arguments given to `ModelSummary(...)` besides `max_depth` come as `summarize_kwargs`."""
        table = format_table(
            summary_data, total_parameters, trainable_parameters, model_size, total_training_modes
        )
        # On stderr, as the Trainer's other lines about the run (and Lightning's log, a StreamHandler's):
        # stdout keeps what the user's code prints.
        trainer = _printing_trainer.get()
        if trainer is not None:
            trainer.print("\n" + table, file=sys.stderr)
        else:
            print("\n" + table, file=sys.stderr)


__all__ = ["LayerRow", "ModelSummary", "Summary", "human_readable_count"]
