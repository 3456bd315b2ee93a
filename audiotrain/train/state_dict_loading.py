"""The checks of `TrainModule.load_state_dict`, made before anything is loaded, with torch's rules: names are
matched exactly (strict) or those the module lacks are ignored (strict=False), a shape that differs is refused
either way, and each weight keeps the module's dtype.

MLX's `load_weights` is not used for the names: its strict check names only the unexpected keys (not the
missing ones beside them), and its non-strict update crashed on a torch `nn.Sequential`'s `0.weight`
(`KeyError: 0`) or put a dict where a weight was (`fc.weight.extra`), breaking the module."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import mlx.core as mx

_NAMES_SHOWN = 10


class IncompatibleKeys(NamedTuple):
    """torch's `load_state_dict` result: what a strict=False load left alone (`result.missing_keys`)."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def checked_arrays(
    who: str, own: Mapping[str, mx.array], state_dict: Any, strict: bool
) -> tuple[list[tuple[str, mx.array]], IncompatibleKeys]:
    """The (name, array) pairs of `state_dict` to load into a module whose weights are `own`, cast to their
    dtypes, and the names that differ; a `ValueError` (or `TypeError`) starting with `who` names every key
    that does not fit."""
    if not isinstance(state_dict, Mapping):
        raise TypeError(
            f"{who} takes a dict of name -> array (a state_dict()), not {type(state_dict).__name__} "
            f"{state_dict!r:.80}; for a weights file: load_state_dict(safetensors.numpy.load_file(path)) "
            "(safetensors.torch.load_file for bfloat16), or torch.load(path) for a .pt"
        )
    arrays, wrong, layouts = [], [], []
    for name, value in state_dict.items():
        if name not in own:
            continue
        try:
            array = mx.array(value).astype(own[name].dtype)
        except (TypeError, ValueError) as error:
            raise TypeError(f"{who}: {name!r} is a {type(value).__name__}, not an array ({error})") from None
        if array.shape != own[name].shape:
            wrong.append(f"{name}: {array.shape}, the module's is {own[name].shape}")
            layouts.append(_torch_layout(name, array.shape, own[name].shape))
        arrays.append((name, array))
    if wrong:
        raise ValueError(f"{who}: size mismatch for {'; '.join(wrong)}{next(filter(None, layouts), '')}")
    missing = [name for name in own if name not in state_dict]
    unexpected = [name for name in state_dict if name not in own]
    if strict and (missing or unexpected):
        raise ValueError(
            f"{who}: the names differ from the module's: " + _name_differences(missing, unexpected)
        )
    return arrays, IncompatibleKeys(missing, unexpected)


def _torch_layout(name: str, given: tuple, own: tuple) -> str:
    """Where `given` is `own` in torch's layout of a convolution's weight (torch keeps the input channels
    before the kernel axes, MLX last): how to move the axes, else ''. A torch state_dict's conv weights (a
    HiFi-GAN's `weight_v`, its ConvTranspose1d upsamplers) were refused with their two shapes alone."""
    if len(given) < 3:
        return ""
    kernel = tuple(range(2, len(given)))
    moves = [
        f"{what}{len(kernel)}d weight ({layout}): tensor.permute{order}"
        for what, layout, order in (
            ("a Conv", "out, in, *kernel", (0, *kernel, 1)),
            ("a ConvTranspose", "in, out, *kernel", (1, *kernel, 0)),
        )
        if tuple(given[axis] for axis in order) == own
    ]
    if not moves:
        return ""
    return (
        f". {name} looks like torch's layout, MLX's is (out, *kernel, in): load {' or, for '.join(moves)} "
        "(numpy: .transpose with the same axes), for each such weight"
    )


def _name_differences(missing: list[str], unexpected: list[str]) -> str:
    parts = [
        f"{label} key(s) {_first(names)}"
        for label, names in (("missing", missing), ("unexpected", unexpected))
        if names
    ]
    hint = _prefix_hint(missing, unexpected)
    return "; ".join(parts) + (f". {hint}" if hint else "") + ". strict=False loads the names that match."


def _first(names: list[str]) -> str:
    shown = ", ".join(sorted(names)[:_NAMES_SHOWN])
    return shown + (f", and {len(names) - _NAMES_SHOWN} more" if len(names) > _NAMES_SHOWN else "")


def _prefix_hint(missing: list[str], unexpected: list[str]) -> str:
    """Lightning's `state_dict()` names a wrapped model's weights `model.<name>`: which prefix to strip."""
    prefixes = {name.split(".", 1)[0] for name in unexpected if "." in name}
    if not missing or len(prefixes) != 1 or not all("." in name for name in unexpected):
        return ""
    prefix = prefixes.pop() + "."
    if not {name.removeprefix(prefix) for name in unexpected} & set(missing):
        return ""
    return (
        f"every name starts with {prefix!r}, which the module's do not: pass "
        f"{{k.removeprefix({prefix!r}): v for k, v in state_dict.items()}}"
    )
