"""Public names of a package imported on first use (PEP 562), so importing one light submodule of the package
does not pull in the heavy ones beside it."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable


def lazy_attributes(package: str, public: dict[str, str]) -> tuple[Callable, Callable]:
    """(``__getattr__``, ``__dir__``) for `package`: each name of `public` comes from the module it maps to,
    imported the first time the name is read (then kept in the package)."""

    def __getattr__(name: str):
        if name in public:
            try:
                module = importlib.import_module(public[name])
            except ImportError:
                from audiotrain._system import check_mlx_loads

                check_mlx_loads()  # MLX without a backend: say which extra to install (else: the error itself)
                raise
            value = getattr(module, name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(getattr(sys.modules[package], "__all__", public))

    return __getattr__, __dir__


def imported_on_call(module: str, name: str) -> Callable:
    """The function `name` of `module`, imported the first time it is called: a command line module can name
    the functions of a heavy module (the trainer) without importing it for the commands that never call them
    (``--help``, a usage error, ``predict``). A test can still replace it in the importing module."""

    def call(*args, **kwargs):
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"`{module}.{name}`, imported on the first call."
    return call
