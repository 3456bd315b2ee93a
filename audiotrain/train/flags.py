"""Validation of Trainer flags: every wrong value gets a message naming the flag and what it takes."""

from __future__ import annotations

import numbers
from typing import Any

from audiotrain.train.step import PRECISIONS


def _fail(name: str, value: Any, expected: str) -> None:
    raise ValueError(f"Trainer({name}={value!r}): expected {expected}")


def positive_int_or_none(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        _fail(name, value, "a positive int or None")
    return int(value)


def positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        _fail(name, value, "a positive int")
    return int(value)


def sanity_steps(value: Any) -> int:
    """`num_sanity_val_steps`: batches checked before training, -1 for the whole loader."""
    if isinstance(value, bool) or not isinstance(value, int) or value < -1:
        _fail("num_sanity_val_steps", value, "an int >= 0, or -1 for the whole validation loader")
    return value


def limit(name: str, value: Any) -> int | float | None:
    """`limit_*_batches`: None (all), an int count >= 0, or a float fraction in [0, 1]."""
    if value is None:
        return None
    if isinstance(value, bool):
        _fail(name, value, "None, an int number of batches, or a float fraction in [0.0, 1.0]")
    if isinstance(value, numbers.Integral):
        if value < 0:
            _fail(name, value, "a number of batches >= 0")
        return int(value)
    if isinstance(value, numbers.Real) and 0.0 <= value <= 1.0:
        return float(value)
    _fail(name, value, "None, an int number of batches, or a float fraction in [0.0, 1.0]")


def val_check_interval(value: Any) -> int | float:
    if isinstance(value, bool):
        _fail(
            "val_check_interval", value, "a float fraction of an epoch in (0, 1] or an int number of batches"
        )
    if isinstance(value, numbers.Integral):
        if value < 1:
            _fail("val_check_interval", value, "an int number of training batches >= 1")
        return int(value)
    if isinstance(value, numbers.Real) and 0.0 < value <= 1.0:
        return float(value)
    _fail(
        "val_check_interval", value, "a float fraction of an epoch in (0, 1] or an int number of batches >= 1"
    )


def clip(value: Any, algorithm: Any) -> tuple[float | None, str]:
    if algorithm not in ("norm", "value"):
        _fail("gradient_clip_algorithm", algorithm, "'norm' or 'value'")
    if value is None:
        return None, algorithm
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        _fail("gradient_clip_val", value, "a number > 0, or None to disable clipping")
    return float(value), algorithm


def precision(value: Any) -> str:
    aliases = {
        "32": "32",
        32: "32",
        "32-true": "32",
        "fp32": "32",
        "bf16-mixed": "bf16-mixed",
        "bf16-true": "bf16-true",
        "bf16": "bf16-mixed",  # as in Lightning: "bf16" means mixed (float32 master weights)
    }
    if value not in aliases:
        _fail("precision", value, f"one of {', '.join(repr(p) for p in PRECISIONS)}")
    return aliases[value]


def fast_dev_run(value: Any) -> int:
    """Number of batches for a smoke run (0 = off)."""
    if value is True:
        return 1
    if value is False or value is None:
        return 0
    if isinstance(value, numbers.Integral) and value >= 1:
        return int(value)
    _fail("fast_dev_run", value, "a bool or a positive int number of batches")


def resolve_limit(limit_value: int | float | None, total: int | None, name: str) -> int | None:
    """The number of batches a loader of `total` batches contributes under `limit_value`."""
    if limit_value is None:
        return total
    if isinstance(limit_value, int):
        return limit_value if total is None else min(limit_value, total)
    if total is None:
        raise ValueError(
            f"Trainer({name}={limit_value}): a fraction needs a loader with a length (len(loader))"
        )
    count = int(limit_value * total)
    if count == 0 and limit_value > 0 and total > 0:
        # As Lightning: a fraction that rounds to no batch is a mistake, not a request to skip.
        raise ValueError(
            f"Trainer({name}={limit_value}): {limit_value} x {total} batches is less than one batch; "
            "use a larger fraction, an int number of batches, or 0 to turn it off"
        )
    return count
