"""``python -m audiotrain.recipes.chords``: see `audiotrain.recipes.chords.cli`."""

from audiotrain._system import run_recipe_command

#: The module whose ``main()`` is the command (also for ``audiotrain chords ...``: `audiotrain.__main__`).
CLI = "audiotrain.recipes.chords.cli_help"

# Only when run: importing this module (pydoc, sphinx's autodoc, pkgutil.walk_packages) must not start a run.
if __name__ == "__main__":
    run_recipe_command(CLI)
