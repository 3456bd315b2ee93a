"""How the recipe in this process was started, for the commands it prints (a resume command, "predict with:",
its ``--help``): ``audiotrain chords ...`` when the ``audiotrain`` command (the console script, or
``python -m audiotrain``) ran it, else ``python -m audiotrain.recipes.chords ...``.

pipx and ``uv tool install`` put the console script alone on PATH: there ``python -m audiotrain...`` finds no
module (or no ``python``), so a command printed in that form could not be pasted. `recipe_command` is the one
rule; `as_started` applies it to text (help, messages) written with the ``python -m`` form."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator

#: While ``audiotrain <recipe>`` runs the recipe (in its process and in the ranks of a job it starts), the
#: words the user started it with: "audiotrain" (the console script) or "python -m audiotrain" (no console
#: script on PATH, as after ``pip install --user``: a command printed as ``audiotrain ...`` was not found).
THROUGH_AUDIOTRAIN_ENV = "AUDIOTRAIN_RECIPE_THROUGH_COMMAND"

_RECIPE_PACKAGE = re.compile(r"audiotrain\.recipes\.(\w+)")
#: ``python -m audiotrain`` or ``python -m audiotrain.recipes.<recipe>``, not ``...chords.example``.
_PYTHON_M = re.compile(r"\bpython -m (audiotrain(?:\.recipes\.\w+)?)(?!\w|\.\w)")


def started_through_audiotrain() -> bool:
    return bool(os.environ.get(THROUGH_AUDIOTRAIN_ENV))


def _audiotrain_words() -> list[str]:
    """The words that ran the ``audiotrain`` command: ``["audiotrain"]`` or ``["python", "-m", "audiotrain"]``."""
    value = os.environ.get(THROUGH_AUDIOTRAIN_ENV, "")
    return value.split() if value.startswith("python") else ["audiotrain"]


@contextlib.contextmanager
def through_audiotrain(program: str = "audiotrain") -> Iterator[None]:
    """While the ``audiotrain`` command runs a recipe in this process (and the processes it starts);
    `program`: how the user started it ("audiotrain" or "python -m audiotrain")."""
    before = os.environ.get(THROUGH_AUDIOTRAIN_ENV)
    os.environ[THROUGH_AUDIOTRAIN_ENV] = program
    try:
        yield
    finally:  # (a test calling `audiotrain.__main__.main` goes on in this process)
        if before is None:
            os.environ.pop(THROUGH_AUDIOTRAIN_ENV, None)
        else:
            os.environ[THROUGH_AUDIOTRAIN_ENV] = before


def recipe_command(module: str, *words: str) -> list[str]:
    """The words that start `module` (``audiotrain``, or a recipe ``audiotrain.recipes.chords``) followed by
    `words`, as this recipe was started: ``["audiotrain", "chords", ...]`` through the ``audiotrain``
    command, else ``["python", "-m", "audiotrain.recipes.chords", ...]``."""
    if started_through_audiotrain():
        if module == "audiotrain":
            return [*_audiotrain_words(), *words]
        recipe = _RECIPE_PACKAGE.fullmatch(module)
        if recipe:
            return [*_audiotrain_words(), recipe.group(1), *words]
    return ["python", "-m", module, *words]


def as_started(text: str) -> str:
    """`text` with each ``python -m audiotrain[.recipes.<recipe>]`` in it written as `recipe_command` says."""
    if not started_through_audiotrain():
        return text
    return _PYTHON_M.sub(lambda found: " ".join(recipe_command(found.group(1))), text)
