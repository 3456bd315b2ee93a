"""`RichProgressBar` and `RichModelSummary`: Lightning's callbacks drawn with the `rich` package, which
audiotrain does not provide. Their names import, so that code moved over from Lightning reaches them and
says what to use instead, rather than stopping at an ImportError that names no replacement."""

from __future__ import annotations

from typing import Any


def _given(args: tuple, kwargs: dict[str, Any], first: str) -> str:
    """The arguments as the user wrote them, the first positional one under its Lightning name."""
    named = dict(kwargs)
    if args:
        named = {first: args[0], **named}
    return ", ".join(f"{key}={value!r}" for key, value in named.items())


class RichProgressBar:
    """Lightning's progress bar drawn with `rich`: not provided. Making one raises NotImplementedError naming
    `TQDMProgressBar(refresh_rate=..., leave=...)`, audiotrain's progress bar, which takes Lightning's
    arguments of the same names."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        given = _given(args, kwargs, "refresh_rate")
        raise NotImplementedError(
            f"RichProgressBar({given}) is not provided: audiotrain draws its progress bar with tqdm. Pass "
            "callbacks=[TQDMProgressBar(refresh_rate=1, leave=False)] instead (from audiotrain.callbacks; "
            "Lightning's refresh_rate and leave), or Trainer(enable_progress_bar=False) for none"
        )


class RichModelSummary:
    """Lightning's model summary drawn with `rich`: not provided. Making one raises NotImplementedError naming
    `ModelSummary(max_depth=...)`, which prints the same table as plain text."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        given = _given(args, kwargs, "max_depth")
        depth = kwargs.get("max_depth", args[0] if args else 1)
        raise NotImplementedError(
            f"RichModelSummary({given}) is not provided: audiotrain prints its model summary as plain text. "
            f"Pass callbacks=[ModelSummary(max_depth={depth!r})] instead (from audiotrain.callbacks), or "
            "Trainer(enable_model_summary=False) for none"
        )
