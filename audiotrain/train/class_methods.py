"""`classmethod_of_the_class`: a classmethod refused on an instance, as Lightning 2's `load_from_checkpoint`.

`model.load_from_checkpoint(path)` reads as if it loaded into `model`; it builds and returns a new module,
and `model` keeps its weights. Lightning 2 refuses the call on an instance (its `_restricted_classmethod`),
so the mistake is an error instead of a silently untrained model.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any


class _ClassmethodOfTheClass(classmethod):
    """A classmethod whose call through an instance raises a TypeError that says what to write."""

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        bound = super().__get__(instance, owner)
        if instance is None:
            return bound
        name = f"{type(instance).__name__}.{self.__func__.__name__}"

        @functools.wraps(self.__func__)
        def refused(*args: Any, **kwargs: Any) -> Any:
            raise TypeError(
                f"{name} is a classmethod and was called on an instance: it returns a new object and leaves "
                f"this one as it is, as in Lightning 2, which refuses it. Call it on the class and keep what "
                f"it returns: obj = {name}(path)"
            )

        return refused


if TYPE_CHECKING:  # (type checkers see a plain classmethod, as Lightning's trick for them)
    classmethod_of_the_class = classmethod
else:
    classmethod_of_the_class = _ClassmethodOfTheClass
