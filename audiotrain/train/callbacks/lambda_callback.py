"""`LambdaCallback`: a callback made of functions, one per hook (Lightning's)."""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable
from typing import Any

from audiotrain._signatures import known_signature
from audiotrain.train.callback import Callback

# Lightning's hooks that run inside its step (backward, the optimizer step): audiotrain's step is one compiled
# function, which no Python hook can enter.
_INSIDE_THE_STEP = (
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
)


def hook_names() -> list[str]:
    """The hooks a `Callback` has: `setup`, `teardown` and every `on_*` method of the base class."""
    return sorted(
        name
        for name, value in vars(Callback).items()
        if callable(value) and (name.startswith("on_") or name in ("setup", "teardown"))
    )


def hook_arguments(name: str) -> list[str]:
    """The arguments the Trainer calls hook `name` with (positionally): its required parameters, `self` left
    out (an optional one such as `on_predict_batch_end`'s `dataloader_idx` is not passed, nor what
    `on_train_end`'s `*args` takes for seed 003's form)."""
    parameters = list(inspect.signature(getattr(Callback, name)).parameters.values())[1:]
    required = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in parameters if p.kind in required and p.default is inspect.Parameter.empty]


def _checked(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """`function`, once its signature is checked against hook `name`'s arguments; one whose signature says
    nothing (`known_signature`: some builtins, mx functions) is wrapped instead, so that a TypeError of its
    call names the hook."""
    arguments = hook_arguments(name)
    called_with = f"{name}({', '.join(arguments)})"
    signature = known_signature(function)
    if signature is not None:
        try:
            signature.bind(*arguments)
        except TypeError as err:
            raise TypeError(
                f"LambdaCallback({name}=...): a function of {signature} cannot take the hook's "
                f"{len(arguments)} arguments: it is called as {called_with} ({err}); e.g. "
                f"lambda {', '.join(arguments)}: ..."
            ) from None
        return function

    @functools.wraps(function)
    def call(*args: Any) -> Any:
        try:
            return function(*args)
        except TypeError as err:
            raise TypeError(
                f"LambdaCallback({name}=...): calling {function!r} as {called_with} raised TypeError: {err} "
                "(the function must take the hook's arguments)"
            ) from err

    return call


class LambdaCallback(Callback):
    """Lightning's: each keyword is a hook's name and its value the function the hook calls, with the
    hook's arguments: ``LambdaCallback(on_train_epoch_end=lambda trainer, module: ...)``.

    The hooks are those of `Callback` (`setup`, `teardown`, `on_*`). A name that is not one of them is
    refused naming it and the close matches (a typo would otherwise be a hook that never runs); Lightning's
    hooks inside the optimizer step (`on_before_backward`, `on_after_backward`, `on_before_optimizer_step`,
    `on_before_zero_grad`) are refused with the reason: audiotrain's step is one compiled function. Each
    function's signature is checked against its hook's arguments (the hook's required parameters, passed
    positionally): one that cannot take them is refused here, naming the hook and its arguments, rather
    than failing at the hook's first call; a function that cannot be inspected (some builtins) is taken,
    and a TypeError of its call names the hook.
    Lightning takes each hook as an explicit keyword; here they are `**hooks`, checked alike. None, Lightning's
    default for each, leaves that hook as it is.
    """

    def __init__(self, **hooks: Callable[..., Any]):
        known = hook_names()
        for name, function in hooks.items():
            if function is None and (name in known or name in _INSIDE_THE_STEP):
                continue  # (Lightning's default for each hook: no function, the hook as it is)
            if name in _INSIDE_THE_STEP:
                raise TypeError(
                    f"LambdaCallback({name}=...): audiotrain has no {name} hook: the forward, backward and "
                    "optimizer update run as one compiled step, which no Python hook can enter (Lightning's "
                    "hook has no counterpart; on_train_batch_start / on_train_batch_end run around the step)"
                )
            if name not in known:
                close = difflib.get_close_matches(name, known, n=3)
                hint = (
                    f"; did you mean {' or '.join(close)}?" if close else f"; the hooks: {', '.join(known)}"
                )
                raise TypeError(f"LambdaCallback({name}=...): {name!r} is not a Callback hook{hint}")
            if not callable(function):
                raise TypeError(
                    f"LambdaCallback({name}=...): expected a function taking the hook's arguments (e.g. "
                    f"lambda trainer, module: ...), got {type(function).__name__} {function!r}"
                )
            # (an instance attribute: called without `self`, as Lightning's)
            setattr(self, name, _checked(name, function))
        self.hooks = {name: function for name, function in hooks.items() if function is not None}
