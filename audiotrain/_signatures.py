"""What a user's function takes, read before its first call, for the checks that refuse a function that
cannot take its arguments (an `avg_fn`, a LambdaCallback's hook) when it is given rather than mid-fit."""

from __future__ import annotations

import inspect
from collections.abc import Callable

_CATCH_ALL = frozenset({inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD})


def known_signature(fn: Callable) -> inspect.Signature | None:
    """`fn`'s signature, or None where it says nothing of what `fn` takes: where it cannot be inspected (some
    builtins; extension functions on Python 3.10-3.12) or is only ``(*args, **kwargs)``, which Python 3.13
    reports for an extension function such as mx.maximum (its type's ``__call__``). A caller checks such a
    function by its call instead, naming it where the call raises TypeError."""
    try:
        found = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    kinds = {parameter.kind for parameter in found.parameters.values()}
    return None if kinds and kinds <= _CATCH_ALL else found
