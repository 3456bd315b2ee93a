"""A "did you mean" for a class's unknown keyword argument (``DataLoader(batchsize=4)``,
``TrainingConfig(lr=1e-3)``), as the Trainer's (`audiotrain.train.flags.lightning_only`) and the settings
parsers give: Python's own TypeError names the keyword but not the one meant."""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Mapping
from typing import Any, TypeVar

Class = TypeVar("Class", bound=type)


def suggesting_keywords(
    other_names: Mapping[str, str] | None = None, instead: Mapping[str, str] | None = None
):
    """A class decorator: an unknown keyword argument of the class's ``__init__`` is refused, before it runs,
    as Python refuses it (a TypeError with its words) and with the closest keyword it takes; `other_names`
    maps other libraries' names (``lr``) to its own (``learning_rate``) where difflib finds none, and
    `instead` a keyword that is no setting to what to do (``preset``: "use X.from_preset(...)"; its
    ``{value!r}`` is the value given). Put it above ``@dataclass``: it wraps the ``__init__`` that makes."""

    def decorate(cls: Class) -> Class:
        init = cls.__init__
        parameters = inspect.signature(init).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            return cls  # (it takes any keyword: nothing is unknown)
        known = [
            name
            for name, p in parameters.items()
            if name != "self" and p.kind is not inspect.Parameter.POSITIONAL_ONLY
        ]
        names = {} if other_names is None else {k: v for k, v in other_names.items() if v in known}

        @functools.wraps(init)
        def checked_init(self: Any, *args: Any, **kwargs: Any) -> None:
            for name in kwargs:
                if name not in parameters and instead and name in instead:
                    what = instead[name].format(value=kwargs[name])
                    raise TypeError(
                        f"{type(self).__name__}() got an unexpected keyword argument {name!r}: {what}"
                    )
                if name not in parameters:
                    close = [names[name]] if name in names else difflib.get_close_matches(name, known, n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    called = type(self).__name__  # (a subclass's name: the class the user called)
                    raise TypeError(f"{called}() got an unexpected keyword argument {name!r}{hint}")
            init(self, *args, **kwargs)

        cls.__init__ = checked_init
        return cls

    return decorate
